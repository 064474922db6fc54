//! The AWS CLI's shared files, for a remote whose credentials are not in the
//! environment: the profile `AWS_PROFILE` names (else `default`), read from
//! the credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//! `~/.aws/credentials`, sections `[NAME]`) and the config file
//! (`AWS_CONFIG_FILE`, else `~/.aws/config`, sections `[profile NAME]` and
//! `[default]`). Keys in the credentials file win over keys in the config
//! file, and keys in the environment over both (the caller checks those);
//! the region comes from the config file. This is the AWS CLI's order.
//!
//! Only static keys are read. A profile that gets its keys another way (a
//! role, SSO, a helper process) is one clear error naming the profile and
//! the way. No message here ever holds a value read from the files.

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::PathBuf;

use ini::{Ini, ParseOption, Properties};

/// What a profile gives a remote.
#[derive(PartialEq, Eq)]
pub struct Profile {
    pub keys: Option<Keys>,
    pub region: Option<String>,
}

/// A static key pair (and session token).
#[derive(PartialEq, Eq)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key id is an identifier, the secret and token are not printed.
        f.debug_struct("Keys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("keys", &self.keys)
            .field("region", &self.region)
            .finish()
    }
}

/// Profile keys that mean "the credentials come from somewhere else",
/// which dbguard does not follow.
const INDIRECT: &[&str] = &[
    "role_arn",
    "source_profile",
    "credential_process",
    "sso_session",
    "sso_start_url",
    "web_identity_token_file",
];

/// The profile in use: `AWS_PROFILE`, else `default`.
pub fn profile_name(env: &dyn Fn(&str) -> Option<String>) -> String {
    env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned())
}

/// Where the credentials file is (`None`: no `HOME` to find it in).
pub fn credentials_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    file_path(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials")
}

fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    file_path(env, "AWS_CONFIG_FILE", "config")
}

fn file_path(env: &dyn Fn(&str) -> Option<String>, variable: &str, name: &str) -> Option<PathBuf> {
    let home = env("HOME");
    match env(variable) {
        // The AWS CLI expands a leading `~` in these variables too.
        Some(path) => match (path.strip_prefix("~/"), &home) {
            (Some(rest), Some(home)) => Some(PathBuf::from(home).join(rest)),
            _ => Some(PathBuf::from(path)),
        },
        None => home.map(|h| PathBuf::from(h).join(".aws").join(name)),
    }
}

/// The profile in use, from the two files; `Ok(None)` when neither has it
/// and none was asked for by name.
pub fn read(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Profile>, String> {
    let name = profile_name(env);
    let credentials_file = credentials_path(env);
    let config_file = config_path(env);
    let credentials = load(credentials_file.as_ref())?;
    let config = load(config_file.as_ref())?;
    let in_credentials = credentials
        .as_ref()
        .and_then(|ini| ini.section(Some(name.as_str())));
    let in_config = config.as_ref().and_then(|ini| config_section(ini, &name));
    if in_credentials.is_none() && in_config.is_none() {
        if env("AWS_PROFILE").is_none() {
            return Ok(None);
        }
        return Err(format!(
            "AWS_PROFILE names the profile `{name}`, which is in neither {} nor {}",
            shown(credentials_file.as_ref(), "~/.aws/credentials"),
            shown(config_file.as_ref(), "~/.aws/config")
        ));
    }
    let keys = match in_credentials.map(|s| static_keys(s, &name, credentials_file.as_ref())) {
        Some(Ok(Some(keys))) => Some(keys),
        Some(Err(e)) => return Err(e),
        _ => in_config
            .map(|s| static_keys(s, &name, config_file.as_ref()))
            .transpose()?
            .flatten(),
    };
    if keys.is_none() {
        let indirect = [in_credentials, in_config]
            .into_iter()
            .flatten()
            .find_map(|s| INDIRECT.iter().find(|k| s.contains_key(**k)));
        if let Some(how) = indirect {
            return Err(format!(
                "the AWS profile `{name}` gets its credentials through `{how}`, which dbguard does not follow; \
                 export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (`aws configure export-credentials --profile {name} --format env` prints them)"
            ));
        }
    }
    Ok(Some(Profile {
        keys,
        region: in_config.and_then(|s| value(s, "region")),
    }))
}

/// A file's sections; a missing file has none.
fn load(path: Option<&PathBuf>) -> Result<Option<Ini>, String> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    // Values are taken as written: a secret may hold characters an INI
    // parser would otherwise read as quotes or escapes.
    let options = ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        ..ParseOption::default()
    };
    Ini::load_from_str_opt(&text, options)
        .map(Some)
        // The parser's message may quote the line; only its number is shown.
        .map_err(|e| {
            format!(
                "{} is not a valid AWS credentials/config file (line {})",
                path.display(),
                e.line + 1
            )
        })
}

/// `[profile NAME]` in the config file; `[default]` for the default one.
fn config_section<'i>(ini: &'i Ini, name: &str) -> Option<&'i Properties> {
    ini.iter()
        .find(|(section, _)| {
            section.is_some_and(|s| {
                let s = s.trim();
                s.strip_prefix("profile")
                    .filter(|rest| rest.starts_with(char::is_whitespace))
                    .map(str::trim)
                    .map_or(name == "default" && s == "default", |n| n == name)
            })
        })
        .map(|(_, properties)| properties)
}

fn value(section: &Properties, key: &str) -> Option<String> {
    section
        .get(key)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The static keys of one section; half a pair is an error.
fn static_keys(
    section: &Properties,
    name: &str,
    file: Option<&PathBuf>,
) -> Result<Option<Keys>, String> {
    let id = value(section, "aws_access_key_id");
    let secret = value(section, "aws_secret_access_key");
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(Keys {
            access_key_id,
            secret_access_key,
            session_token: value(section, "aws_session_token"),
        })),
        (None, None) => Ok(None),
        (id, _) => Err(format!(
            "the AWS profile `{name}` in {} has {} but not {}",
            shown(file, "the AWS files"),
            if id.is_some() {
                "aws_access_key_id"
            } else {
                "aws_secret_access_key"
            },
            if id.is_some() {
                "aws_secret_access_key"
            } else {
                "aws_access_key_id"
            },
        )),
    }
}

fn shown<'p>(path: Option<&'p PathBuf>, fallback: &'static str) -> Cow<'p, str> {
    path.map_or(Cow::Borrowed(fallback), |p| p.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Files {
        dir: tempfile::TempDir,
        vars: HashMap<String, String>,
    }

    impl Files {
        fn new(credentials: &str, config: &str) -> Files {
            let dir = tempfile::tempdir().unwrap();
            let aws = dir.path().join(".aws");
            fs::create_dir(&aws).unwrap();
            fs::write(aws.join("credentials"), credentials).unwrap();
            fs::write(aws.join("config"), config).unwrap();
            let mut vars = HashMap::new();
            vars.insert("HOME".to_owned(), dir.path().display().to_string());
            Files { dir, vars }
        }

        fn set(mut self, name: &str, value: &str) -> Files {
            self.vars.insert(name.to_owned(), value.to_owned());
            self
        }

        fn read(&self) -> Result<Option<Profile>, String> {
            read(&|name: &str| self.vars.get(name).cloned())
        }
    }

    fn pair(profile: &Profile) -> (&str, &str, Option<&str>) {
        let keys = profile.keys.as_ref().expect("keys");
        (
            &keys.access_key_id,
            &keys.secret_access_key,
            keys.session_token.as_deref(),
        )
    }

    const CREDENTIALS: &str = "\
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default/secret+with\\chars\"

[backup]
aws_access_key_id=AKIABACKUP
aws_secret_access_key=backup-secret
aws_session_token = token-1
";

    const CONFIG: &str = "\
[default]
region = eu-west-1

[profile backup]
region = eu-central-2
s3 =
  max_concurrent_requests = 4

[profile config-only]
aws_access_key_id = AKIACONFIG
aws_secret_access_key = config-secret

[profile via-role]
role_arn = arn:aws:iam::123456789012:role/x
source_profile = default
";

    #[test]
    fn the_default_profile_and_its_region() {
        let files = Files::new(CREDENTIALS, CONFIG);
        let profile = files.read().unwrap().unwrap();
        assert_eq!(
            pair(&profile),
            ("AKIADEFAULT", "default/secret+with\\chars\"", None)
        );
        assert_eq!(profile.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn aws_profile_picks_a_section_in_both_files() {
        let files = Files::new(CREDENTIALS, CONFIG).set("AWS_PROFILE", "backup");
        let profile = files.read().unwrap().unwrap();
        assert_eq!(
            pair(&profile),
            ("AKIABACKUP", "backup-secret", Some("token-1"))
        );
        assert_eq!(profile.region.as_deref(), Some("eu-central-2"));
        // Keys only in the config file count too.
        let files = Files::new(CREDENTIALS, CONFIG).set("AWS_PROFILE", "config-only");
        let profile = files.read().unwrap().unwrap();
        assert_eq!(pair(&profile), ("AKIACONFIG", "config-secret", None));
    }

    #[test]
    fn the_variables_move_the_files() {
        let files = Files::new("", "");
        let elsewhere = files.dir.path().join("elsewhere");
        fs::write(
            &elsewhere,
            "[default]\naws_access_key_id=A\naws_secret_access_key=S\n",
        )
        .unwrap();
        let files = files.set("AWS_SHARED_CREDENTIALS_FILE", elsewhere.to_str().unwrap());
        assert_eq!(pair(&files.read().unwrap().unwrap()), ("A", "S", None));
        let files = files
            .set("AWS_SHARED_CREDENTIALS_FILE", "~/nothing-here")
            .set("AWS_CONFIG_FILE", "~/elsewhere");
        // `[default]` read as a config file: keys there count.
        assert_eq!(pair(&files.read().unwrap().unwrap()), ("A", "S", None));
    }

    #[test]
    fn no_files_and_no_profile_asked_for_is_nothing() {
        let files = Files::new("", "");
        assert_eq!(files.read().unwrap(), None);
    }

    #[test]
    fn errors_name_the_profile_and_file_never_a_value() {
        let files = Files::new(CREDENTIALS, CONFIG).set("AWS_PROFILE", "nope");
        let err = files.read().unwrap_err();
        assert!(err.contains("`nope`, which is in neither"), "{err}");

        let files = Files::new(CREDENTIALS, CONFIG).set("AWS_PROFILE", "via-role");
        let err = files.read().unwrap_err();
        assert!(err.contains("through `role_arn`"), "{err}");

        let files =
            Files::new("[half]\naws_access_key_id = AKIAHALF\n", "").set("AWS_PROFILE", "half");
        let err = files.read().unwrap_err();
        assert!(
            err.contains("has aws_access_key_id but not aws_secret_access_key")
                && !err.contains("AKIAHALF"),
            "{err}"
        );

        let files = Files::new("[default\naws_secret_access_key = leaked\n", "");
        let err = files.read().unwrap_err();
        assert!(
            err.contains("not a valid AWS credentials/config file (line ")
                && !err.contains("leaked"),
            "{err}"
        );
    }
}
