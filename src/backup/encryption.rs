//! Client-side encryption of remote copies: the key file `dbguard keygen`
//! writes, and age (x25519) streams over it. Everything sent to a remote
//! with `encryption_key_file` set goes through [`KeyFile::encryptor`], and
//! comes back through [`KeyFile::decrypt`], which authenticates every chunk:
//! a wrong key or a changed byte is an error, never different data.
//!
//! The key file is age's own identity format (`AGE-SECRET-KEY-1…` with the
//! public key as a comment), so `age -d -i FILE` can open a copy without
//! dbguard. The secret never leaves the file: not in messages, not in argv.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;

use crate::Error;

/// A key read from a key file: the identity to decrypt, its recipient to encrypt.
pub struct KeyFile {
    path: PathBuf,
    identity: age::x25519::Identity,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret, even in a debug print.
        f.debug_struct("KeyFile").field("path", &self.path).finish()
    }
}

impl KeyFile {
    /// Creates a new key file at `path`, mode 0600, refusing to replace
    /// one: overwriting a key makes every copy made with it unreadable.
    /// Returns the public key.
    pub fn generate(path: &Path) -> Result<String, Error> {
        let identity = age::x25519::Identity::generate();
        let public = identity.to_public().to_string();
        let text = format!(
            "# created by dbguard keygen: {}\n# public key: {public}\n{}\n",
            chrono::Local::now().to_rfc3339(),
            identity.to_string().expose_secret()
        );
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                let why = if e.kind() == io::ErrorKind::AlreadyExists {
                    "it already exists, and replacing a key makes every copy made with it unreadable; choose another name".to_owned()
                } else {
                    e.to_string()
                };
                Error::Usage(format!("cannot create key file {}: {why}", path.display()))
            })?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(format!("cannot write key file {}", path.display()), e))?;
        Ok(public)
    }

    /// Reads the key file; an unreadable or malformed one is one clear error.
    pub fn read(path: &Path) -> Result<KeyFile, Error> {
        let text = fs::read_to_string(path).map_err(|e| {
            Error::Usage(format!(
                "cannot read encryption key file {}: {e} (create one with `dbguard keygen FILE`)",
                path.display()
            ))
        })?;
        let identity = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .and_then(|l| age::x25519::Identity::from_str(l).ok())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{} holds no age secret key (AGE-SECRET-KEY-1…); create one with `dbguard keygen FILE`",
                    path.display()
                ))
            })?;
        Ok(KeyFile {
            path: path.to_path_buf(),
            identity,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public key, safe to print.
    pub fn public_key(&self) -> String {
        self.identity.to_public().to_string()
    }

    /// Wraps `out` so that what is written to it arrives encrypted; call
    /// `finish()` on the result to write the last, authenticated chunk.
    pub fn encryptor<W: Write>(&self, out: W) -> io::Result<age::stream::StreamWriter<W>> {
        let recipient = self.identity.to_public();
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .map_err(io::Error::other)?;
        encryptor.wrap_output(out)
    }

    /// Wraps encrypted `input` in a reader of the plaintext. A wrong key
    /// fails here; a changed or cut byte fails on the read that reaches it.
    pub fn decrypt<R: Read>(&self, input: R) -> Result<impl Read, String> {
        let decryptor = age::Decryptor::new(input).map_err(describe)?;
        decryptor
            .decrypt(std::iter::once(&self.identity as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => format!(
                    "it was encrypted for another key than {} (public key {})",
                    self.path.display(),
                    self.public_key()
                ),
                other => describe(other),
            })
    }
}

fn describe(e: age::DecryptError) -> String {
    match e {
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => {
            "it is not an age-encrypted object (corrupted, or written without encryption)"
                .to_owned()
        }
        other => format!("it cannot be decrypted ({other}); the object is damaged or was altered"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn round_trip(key: &KeyFile, plain: &[u8]) -> Vec<u8> {
        let mut sealed = key.encryptor(Vec::new()).unwrap();
        sealed.write_all(plain).unwrap();
        sealed.finish().unwrap()
    }

    #[test]
    fn keygen_writes_a_private_key_once_and_it_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsite.key");
        let public = KeyFile::generate(&path).unwrap();
        assert!(public.starts_with("age1"), "{public}");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = KeyFile::generate(&path).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");

        let key = KeyFile::read(&path).unwrap();
        assert_eq!(key.public_key(), public);
        assert!(!format!("{key:?}").contains("SECRET"));
        let plain = vec![7u8; 200_000];
        let sealed = round_trip(&key, &plain);
        assert!(!sealed.windows(64).any(|w| w == &plain[..64]));
        let mut back = Vec::new();
        key.decrypt(&sealed[..])
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, plain);
    }

    #[test]
    fn a_wrong_key_or_a_changed_byte_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        KeyFile::generate(&a).unwrap();
        KeyFile::generate(&b).unwrap();
        let (a, b) = (KeyFile::read(&a).unwrap(), KeyFile::read(&b).unwrap());
        let mut sealed = round_trip(&a, b"rows");
        let Err(err) = b.decrypt(&sealed[..]) else {
            panic!("decrypted with the wrong key")
        };
        assert!(err.contains("another key"), "{err}");

        let last = sealed.len() - 3;
        sealed[last] ^= 1;
        let mut out = Vec::new();
        let read = a.decrypt(&sealed[..]).unwrap().read_to_end(&mut out);
        assert!(read.is_err(), "a changed byte went unnoticed");

        let not_a_key = dir.path().join("c");
        fs::write(&not_a_key, "hello\n").unwrap();
        let err = KeyFile::read(&not_a_key).unwrap_err().to_string();
        assert!(
            err.contains("no age secret key") && !err.contains("hello"),
            "{err}"
        );
    }
}
