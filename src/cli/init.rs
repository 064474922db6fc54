//! `dbguard init bash|zsh|fish`: prints shell code that keeps the shim
//! directory first on PATH. Activating a virtualenv (or anything else that
//! prepends to PATH) would otherwise put a real `alembic` or `psql` ahead of
//! the shims, so the snippet installs a prompt hook, as direnv and mise do,
//! that moves the shim directory back to the front before every prompt.
//! The hook is pure shell — no subprocess per prompt — and does nothing when
//! the directory is already first.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::shim_dir;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to print code for.
    #[arg(value_enum)]
    pub shell: Shell,

    /// The shim directory to keep first [default: $DBGUARD_SHIM_DIR, else
    /// ~/.local/share/dbguard/shims, else a shim directory found on PATH].
    #[arg(long, value_name = "DIR")]
    pub shim_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    /// The shell named by `$SHELL`, when it is one we write code for.
    pub fn from_ctx(ctx: &Context) -> Option<Shell> {
        match shim_dir::login_shell(ctx)?.to_str()? {
            "bash" => Some(Shell::Bash),
            "zsh" => Some(Shell::Zsh),
            "fish" => Some(Shell::Fish),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }

    /// The startup file `install.sh --modify-rc` edits, as users write it.
    pub fn rc_file(self) -> &'static str {
        match self {
            Shell::Bash => "~/.bashrc",
            Shell::Zsh => "~/.zshrc",
            Shell::Fish => "~/.config/fish/config.fish",
        }
    }

    /// The rc line that loads the hook. `dbguard` is the command that runs
    /// this binary; `shim_dir` is passed only when it is not the default.
    pub fn init_line(self, dbguard: &str, shim_dir: Option<&Path>) -> String {
        let mut command = format!("{dbguard} init {}", self.name());
        if let Some(dir) = shim_dir {
            command.push_str(" --shim-dir ");
            command.push_str(&self.quote(&dir.to_string_lossy()));
        }
        match self {
            Shell::Bash | Shell::Zsh => format!("eval \"$({command})\""),
            Shell::Fish => format!("{command} | source"),
        }
    }

    /// A command that puts `dir` first on PATH in the current shell only.
    pub fn path_line(self, dir: &Path) -> String {
        let dir = dir.to_string_lossy();
        match self {
            // Double quotes read best and are safe when nothing in the
            // path is special to the shell.
            Shell::Bash | Shell::Zsh if self.quote(&dir) == dir => {
                format!("export PATH=\"{dir}:$PATH\"")
            }
            Shell::Bash | Shell::Zsh => {
                format!("export PATH={}\"$PATH\"", self.quote(&format!("{dir}:")))
            }
            Shell::Fish => format!("set -gx PATH {} $PATH", self.quote(&dir)),
        }
    }

    /// Quotes `s` as one literal word. Plain paths stay readable.
    pub fn quote(self, s: &str) -> String {
        let plain = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,@%=".contains(&b));
        if plain {
            return s.to_owned();
        }
        match self {
            // Inside single quotes nothing is special; a quote is closed,
            // escaped and reopened.
            Shell::Bash | Shell::Zsh => format!("'{}'", s.replace('\'', r"'\''")),
            // fish single quotes understand \' and \\ only.
            Shell::Fish => format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'")),
        }
    }
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let Some(found) = shim_dir::locate(ctx, args.shim_dir.as_deref()) else {
        return Err(Error::Usage(
            "cannot tell where the shim directory is: HOME is not set; pass --shim-dir DIR".into(),
        ));
    };
    let mut out = std::io::stdout().lock();
    write_snippet(args.shell, &found.path, &mut out)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing the snippet", e))?;
    Ok(crate::error::exit::OK)
}

/// Writes the hook for `shell`, keeping `shim_dir` first on PATH.
pub fn write_snippet(shell: Shell, shim_dir: &Path, out: &mut impl Write) -> std::io::Result<()> {
    let dir = shell.quote(&shim_dir.to_string_lossy());
    let body = match shell {
        Shell::Bash => BASH,
        Shell::Zsh => ZSH,
        Shell::Fish => FISH,
    };
    out.write_all(body.replace("@SHIM_DIR@", &dir).as_bytes())
}

// The hooks run at every prompt, so they use only builtins and parameter
// expansion. Each removes every copy of the directory before prepending it,
// so PATH never grows, and returns early when the directory is already first.

/// bash: appended to PROMPT_COMMAND (a string, or an array since bash 5.1)
/// so it runs after hooks like direnv's that may prepend to PATH
/// themselves; it preserves `$?` for prompts that show the last status.
const BASH: &str = r#"# dbguard: keep the shim directory first on PATH, even after a virtualenv
# is activated. Load with: eval "$(dbguard init bash)"
_dbguard_shims=@SHIM_DIR@
_dbguard_hook() {
  local status=$?
  case ":$PATH:" in
    ":$_dbguard_shims:"*) return $status ;;
  esac
  local rest=":$PATH:"
  while [[ $rest == *":$_dbguard_shims:"* ]]; do
    rest=${rest//":$_dbguard_shims:"/:}
  done
  rest=${rest#:}
  rest=${rest%:}
  PATH=$_dbguard_shims${rest:+:$rest}
  return $status
}
if [[ ";${PROMPT_COMMAND[*]-};" != *"_dbguard_hook"* ]]; then
  if [[ $(declare -p PROMPT_COMMAND 2>/dev/null) == "declare -a"* ]]; then
    PROMPT_COMMAND+=(_dbguard_hook)
  else
    PROMPT_COMMAND=${PROMPT_COMMAND:+$PROMPT_COMMAND$'\n'}_dbguard_hook
  fi
fi
_dbguard_hook
"#;

/// zsh: a precmd function; `path` is the array tied to PATH.
const ZSH: &str = r#"# dbguard: keep the shim directory first on PATH, even after a virtualenv
# is activated. Load with: eval "$(dbguard init zsh)"
typeset -g _dbguard_shims=@SHIM_DIR@
_dbguard_hook() {
  [[ ${path[1]} == "$_dbguard_shims" ]] && return 0
  path=("$_dbguard_shims" "${(@)path:#${(b)_dbguard_shims}}")
  return 0
}
typeset -ag precmd_functions
if (( ! ${precmd_functions[(I)_dbguard_hook]} )); then
  precmd_functions+=(_dbguard_hook)
fi
_dbguard_hook
"#;

/// fish: runs whenever PATH changes (activate.fish sets it) and before
/// each prompt; its own change to PATH re-triggers it once, as a no-op.
const FISH: &str = r#"# dbguard: keep the shim directory first on PATH, even after a virtualenv
# is activated. Load with: dbguard init fish | source
set -g _dbguard_shims @SHIM_DIR@
function _dbguard_hook --on-variable PATH --on-event fish_prompt
    test "$PATH[1]" = "$_dbguard_shims"; and return
    set -l rest
    for dir in $PATH
        test "$dir" = "$_dbguard_shims"; or set -a rest $dir
    end
    set -gx PATH $_dbguard_shims $rest
end
_dbguard_hook
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_plain_paths_readable_and_odd_ones_literal() {
        assert_eq!(Shell::Bash.quote("/home/u/.local"), "/home/u/.local");
        assert_eq!(Shell::Bash.quote("/a b/it's"), r"'/a b/it'\''s'");
        assert_eq!(Shell::Fish.quote(r"/a b/it's\x"), r"'/a b/it\'s\\x'");
        assert_eq!(Shell::Zsh.quote(""), "''");
    }

    #[test]
    fn lines_for_each_shell() {
        let dir = Path::new("/s h");
        assert_eq!(
            Shell::Bash.init_line("dbguard", Some(dir)),
            r#"eval "$(dbguard init bash --shim-dir '/s h')""#
        );
        assert_eq!(
            Shell::Fish.init_line("/b/dbguard", None),
            "/b/dbguard init fish | source"
        );
        assert_eq!(
            Shell::Zsh.path_line(Path::new("/s")),
            r#"export PATH="/s:$PATH""#
        );
        assert_eq!(
            Shell::Bash.path_line(Path::new("/a b$")),
            r#"export PATH='/a b$:'"$PATH""#
        );
        assert_eq!(
            Shell::Fish.path_line(Path::new("/s")),
            "set -gx PATH /s $PATH"
        );
    }
}
