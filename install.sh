#!/usr/bin/env bash
# install.sh: builds dbguard in release mode, installs the binary, and creates
# the shim directory whose `psql`, `alembic`, `dropdb` and `pg_restore` links
# make dbguard the guard of those tools once the directory is first on PATH.
#
# It owns only what it creates, and writes that down in a manifest inside the
# shim directory: re-running it updates its own files and leaves everything
# else alone; a file it did not create is never overwritten (the run stops
# with an error naming it, before anything is changed); `--uninstall`
# removes exactly what the manifest lists, and only while each file is still
# the one it installed.
#
# Run ./install.sh --help for the options.
set -euo pipefail

readonly PROG=install.sh
readonly TOOLS=(psql alembic dropdb pg_restore)
# The marker tells dbguard never to look for real tools in this directory.
readonly MARKER=.dbguard-shims
readonly MANIFEST=.dbguard-manifest
readonly RC_START='# >>> dbguard >>>'
readonly RC_END='# <<< dbguard <<<'

usage() {
	cat <<'EOF'
Usage: ./install.sh [OPTIONS]

Builds dbguard (cargo build --release --locked), installs it, and creates the
shim directory with psql, alembic, dropdb and pg_restore links to it.

Options:
  --prefix DIR      install the binary in DIR/bin and the shims in
                    DIR/share/dbguard/shims
  --bin-dir DIR     where the binary goes [default: ~/.local/bin]
  --shim-dir DIR    where the shims go [default: $XDG_DATA_HOME/dbguard/shims,
                    i.e. ~/.local/share/dbguard/shims]
  --binary FILE     install this already-built dbguard instead of building
  --no-build        install target/release/dbguard as it is, without building
  --modify-rc       add the line that keeps the shims first on PATH to your
                    shell's rc file (once; marked so --uninstall removes it)
  --shell SHELL     bash, zsh or fish [default: from $SHELL]
  --uninstall       remove what an earlier run installed (pass the same
                    --prefix or --shim-dir as then)
  -h, --help        show this help

Exit status: 0 on success, 1 on any error (nothing is changed when a check
fails before installing), 2 on a usage error.
EOF
}

die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}

usage_error() {
	printf '%s: %s (see ./install.sh --help)\n' "$PROG" "$*" >&2
	exit 2
}

warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }

say() { printf '%s\n' "$*"; }

# An absolute form of $1, taken from the current directory when relative:
# links and the manifest must not depend on where the script was run from.
absolute() {
	case $1 in
	/*) printf '%s' "$1" ;;
	*) printf '%s/%s' "$PWD" "$1" ;;
	esac
}

# True when $1 reads the same to every shell without quotes.
is_plain() {
	[[ -n $1 && $1 =~ ^[A-Za-z0-9/._+:,@%=-]+$ ]]
}

# $1 quoted as one word for bash or zsh.
sh_quote() {
	if is_plain "$1"; then
		printf '%s' "$1"
		return
	fi
	local q="'\\''"
	printf "'%s'" "${1//\'/$q}"
}

# $1 quoted as one word for fish, whose single quotes know \\ and \'.
fish_quote() {
	if is_plain "$1"; then
		printf '%s' "$1"
		return
	fi
	local s=${1//\\/\\\\}
	printf "'%s'" "${s//\'/\\\'}"
}

# SHA-256 of a file's contents, read from stdin so odd names do not change
# sha256sum's output format.
sha256_of() {
	local sum
	sum=$(sha256sum <"$1")
	printf '%s' "${sum%% *}"
}

# ---------------------------------------------------------------------------
# Options

prefix=
bin_dir=
shim_dir=
binary=
build=1
modify_rc=0
uninstall=0
shell_name=

while (($#)); do
	opt=$1
	case $opt in
	--prefix | --bin-dir | --shim-dir | --binary | --shell)
		(($# >= 2)) || usage_error "$opt needs a value"
		value=$2
		shift 2
		;;
	--*=*)
		value=${opt#*=}
		opt=${opt%%=*}
		shift
		;;
	*)
		value=
		shift
		;;
	esac
	case $opt in
	--prefix) prefix=$(absolute "$value") ;;
	--bin-dir) bin_dir=$(absolute "$value") ;;
	--shim-dir) shim_dir=$(absolute "$value") ;;
	--binary) binary=$(absolute "$value") build=0 ;;
	--shell) shell_name=$value ;;
	--no-build) build=0 ;;
	--modify-rc) modify_rc=1 ;;
	--uninstall) uninstall=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*) usage_error "unknown option: $opt" ;;
	esac
done

if [[ -z $prefix && (-z $bin_dir || -z $shim_dir) ]]; then
	[[ -n ${HOME:-} ]] || die "HOME is not set; pass --prefix DIR"
fi
data_home=${XDG_DATA_HOME:-}
# The XDG spec says to ignore a relative XDG_DATA_HOME; dbguard does the same.
[[ $data_home == /* ]] || data_home=${HOME:-}/.local/share
if [[ -n $prefix ]]; then
	bin_dir=${bin_dir:-$prefix/bin}
	shim_dir=${shim_dir:-$prefix/share/dbguard/shims}
else
	bin_dir=${bin_dir:-$HOME/.local/bin}
	shim_dir=${shim_dir:-$data_home/dbguard/shims}
fi
readonly dest=$bin_dir/dbguard
readonly manifest=$shim_dir/$MANIFEST

# The manifest holds one path per line.
for path in "$bin_dir" "$shim_dir" "$binary"; do
	[[ $path != *$'\n'* ]] || die "paths with a newline are not supported: $path"
done

# ---------------------------------------------------------------------------
# The manifest: what an earlier run installed.

m_binary=
m_sha=
m_marker=
m_links=()
m_dirs=()
m_rcs=()
m_rcs_created=()

# Reads the manifest, if any, into the m_* variables. Returns 1 without one.
read_manifest() {
	[[ -f $manifest ]] || return 1
	local key value line
	while IFS= read -r line || [[ -n $line ]]; do
		[[ $line == '#'* || -z $line ]] && continue
		key=${line%% *}
		value=${line#* }
		case $key in
		binary) m_binary=$value ;;
		sha256) m_sha=$value ;;
		marker) m_marker=$value ;;
		link) m_links+=("$value") ;;
		dir) m_dirs+=("$value") ;;
		rc) m_rcs+=("$value") ;;
		rc-created) m_rcs_created+=("$value") ;;
		esac
	done <"$manifest"
}

# True when $1 is among the remaining arguments.
contains() {
	local needle=$1 item
	shift
	for item in "$@"; do
		[[ $item == "$needle" ]] && return 0
	done
	return 1
}

# The binary at $1 is the one the manifest recorded, unchanged since.
is_our_binary() {
	[[ -n $m_binary && $1 == "$m_binary" && -f $1 && ! -L $1 && -n $m_sha ]] &&
		[[ $(sha256_of "$1") == "$m_sha" ]]
}

# ---------------------------------------------------------------------------
# Shell rc files

shell_of() {
	local name=${shell_name:-${SHELL:-}}
	name=${name##*/}
	case $name in
	bash | zsh | fish) printf '%s' "$name" ;;
	*) return 1 ;;
	esac
}

rc_file_for() {
	case $1 in
	bash) printf '%s' "${HOME:-~}/.bashrc" ;;
	zsh) printf '%s' "${ZDOTDIR:-${HOME:-~}}/.zshrc" ;;
	fish) printf '%s' "${XDG_CONFIG_HOME:-${HOME:-~}/.config}/fish/config.fish" ;;
	esac
}

# The rc line for shell $1. It runs `dbguard init`, whose prompt hook puts
# the shims first now and again after every virtualenv activation; the test
# keeps a shell starting quietly if the binary is later removed by hand.
# shellcheck disable=SC2016 # the $ belongs to the printed shell code
rc_line_for() {
	case $1 in
	fish)
		printf 'if test -x %s; %s init fish --shim-dir %s | source; end' \
			"$(fish_quote "$dest")" "$(fish_quote "$dest")" "$(fish_quote "$shim_dir")"
		;;
	*)
		printf 'if [ -x %s ]; then eval "$(%s init %s --shim-dir %s)"; fi' \
			"$(sh_quote "$dest")" "$(sh_quote "$dest")" "$1" "$(sh_quote "$shim_dir")"
		;;
	esac
}

# A command putting the shims first in the current shell only.
# shellcheck disable=SC2016 # the $ belongs to the printed shell code
path_line_for() {
	case $1 in
	fish) printf 'set -gx PATH %s $PATH' "$(fish_quote "$shim_dir")" ;;
	*)
		if is_plain "$shim_dir"; then
			printf 'export PATH="%s:$PATH"' "$shim_dir"
		else
			printf 'export PATH=%s"$PATH"' "$(sh_quote "$shim_dir:")"
		fi
		;;
	esac
}

rc_block_for() {
	printf '%s added by dbguard install.sh --modify-rc; install.sh --uninstall removes it\n%s\n%s\n' \
		"$RC_START" "$(rc_line_for "$1")" "$RC_END"
}

# Prints file $1 without the dbguard block.
without_block() {
	awk -v start="$RC_START" -v end="$RC_END" '
		index($0, start) == 1 { skip = 1; next }
		skip && index($0, end) == 1 { skip = 0; next }
		!skip { print }
	' "$1"
}

# Replaces the contents of $1 with stdin, keeping the file itself (its
# permissions, and the link when a dotfile manager made it one).
rewrite() {
	local tmp
	tmp=$(mktemp)
	cat >"$tmp"
	cat "$tmp" >"$1"
	rm -f "$tmp"
}

# ---------------------------------------------------------------------------
# Uninstall

uninstall_dbguard() {
	if ! read_manifest; then
		say "nothing to uninstall: no install manifest at $manifest"
		say "(pass the --prefix or --shim-dir used when installing)"
		return 0
	fi
	local rc link dir i
	for rc in ${m_rcs[@]+"${m_rcs[@]}"}; do
		if [[ -f $rc ]] && grep -qF "$RC_START" "$rc"; then
			without_block "$rc" | rewrite "$rc"
			say "removed the dbguard lines from $rc"
		fi
		if contains "$rc" ${m_rcs_created[@]+"${m_rcs_created[@]}"} && [[ -f $rc && ! -s $rc ]]; then
			rm -f -- "$rc"
			say "removed $rc (created by install.sh, now empty)"
		fi
	done
	for link in ${m_links[@]+"${m_links[@]}"}; do
		if [[ -L $link && $(readlink -- "$link") == "$m_binary" ]]; then
			rm -f -- "$link"
			say "removed $link"
		elif [[ -e $link || -L $link ]]; then
			warn "left $link in place: it no longer links to $m_binary"
		fi
	done
	if is_our_binary "$m_binary"; then
		rm -f -- "$m_binary"
		say "removed $m_binary"
	elif [[ -n $m_binary && (-e $m_binary || -L $m_binary) ]]; then
		warn "left $m_binary in place: it changed since install.sh installed it"
	fi
	if [[ -n $m_marker && -f $m_marker ]]; then
		rm -f -- "$m_marker"
	fi
	rm -f -- "$manifest"
	# Deepest first: the manifest lists directories in creation order.
	for ((i = ${#m_dirs[@]} - 1; i >= 0; i--)); do
		dir=${m_dirs[i]}
		[[ -d $dir ]] || continue
		if rmdir -- "$dir" 2>/dev/null; then
			say "removed $dir"
		else
			warn "left $dir in place: it is not empty"
		fi
	done
	say "dbguard uninstalled."
}

# ---------------------------------------------------------------------------
# Build

# The build compiles a little C (stacker's stack-switching shim), so it needs
# a C compiler and linker. On Debian those come from build-essential,
# installed here only when missing.
ensure_build_tools() {
	command -v cc >/dev/null 2>&1 && return 0
	local packages=(build-essential)
	command -v apt-get >/dev/null 2>&1 ||
		die "building dbguard needs a C compiler and linker (cc); install your system's compiler package and run install.sh again"
	local sudo=()
	if ((EUID != 0)); then
		command -v sudo >/dev/null 2>&1 ||
			die "building dbguard needs ${packages[*]}; as root run: apt-get install -y ${packages[*]}"
		sudo=(sudo)
	fi
	say "installing ${packages[*]} (a C compiler and linker, needed to build dbguard)"
	${sudo[@]+"${sudo[@]}"} apt-get update -qq
	${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
}

# Builds, and prints the path of the built binary.
#
# On Linux with glibc the binary is linked statically (crt-static, no PIE):
# every psql call pays for one more exec, and a static binary skips the
# dynamic loader, which halves what the shim adds (measured with
# `cargo bench --bench shim_overhead`, README "Benchmarks"). The static build
# goes to target/<host triple>/release; when the host is not *-linux-gnu, or
# rustc cannot be asked for its host, the ordinary build is used.
build_binary() {
	local repo cargo target triple=""
	repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
	target=${CARGO_TARGET_DIR:-target}
	[[ $target == /* ]] || target=$repo/$target
	if ((build)); then
		cargo=$(command -v cargo || true)
		# rustup puts cargo in ~/.cargo/bin, which a fresh shell may not have on PATH yet.
		if [[ -z $cargo && -x ${CARGO_HOME:-${HOME:-}/.cargo}/bin/cargo ]]; then
			cargo=${CARGO_HOME:-$HOME/.cargo}/bin/cargo
		fi
		[[ -n $cargo ]] || die "cargo not found: install Rust with rustup (https://rustup.rs), then run install.sh again"
		local rustc
		rustc=$(command -v rustc || true)
		[[ -z $rustc && -x ${cargo%/*}/rustc ]] && rustc=${cargo%/*}/rustc
		if [[ -n $rustc ]]; then
			triple=$("$rustc" -vV 2>/dev/null | sed -n 's/^host: //p')
			[[ $triple == *-linux-gnu ]] || triple=""
		fi
		# Progress goes to stderr: stdout carries the binary's path.
		ensure_build_tools >&2
		if [[ -n $triple ]]; then
			say "building dbguard (cargo build --release --locked --target $triple, static)" >&2
			(cd -- "$repo" && RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
				"$cargo" build --release --locked --target "$triple") >&2
		else
			say "building dbguard (cargo build --release --locked)" >&2
			(cd -- "$repo" && "$cargo" build --release --locked) >&2
		fi
	fi
	local built=$target/release/dbguard
	[[ -n $triple ]] && built=$target/$triple/release/dbguard
	[[ -x $built ]] ||
		die "no built binary at $built; run without --no-build"
	printf '%s' "$built"
}

# ---------------------------------------------------------------------------
# Install

# Fails unless directory $1 exists or can be created: its nearest existing
# ancestor must be a directory this user may write to.
check_dir() {
	local dir=$1
	while [[ ! -e $dir && $dir != / ]]; do
		dir=$(dirname -- "$dir")
	done
	[[ -d $dir ]] || die "cannot create $1: $dir is not a directory"
	[[ -w $dir || $dir == "$1" ]] || die "cannot create $1: no permission to write in $dir"
}

created_dirs=()
tmp_binary=

# Removes a half-copied binary when the run stops early.
# shellcheck disable=SC2317 # called by the EXIT trap
remove_tmp_binary() {
	[[ -z $tmp_binary ]] || rm -f -- "$tmp_binary"
}

# Creates directory $1 (mode 0755) and any missing parents, remembering
# which ones this run created so --uninstall can remove them when empty.
make_dir() {
	local dir=$1 missing=()
	while [[ ! -e $dir && $dir != / ]]; do
		missing=("$dir" ${missing[@]+"${missing[@]}"})
		dir=$(dirname -- "$dir")
	done
	[[ -d $dir ]] || die "$dir is not a directory"
	for dir in ${missing[@]+"${missing[@]}"}; do
		mkdir -m 0755 -- "$dir"
		created_dirs+=("$dir")
	done
}

install_dbguard() {
	read_manifest || true
	local src
	if [[ -n $binary ]]; then
		[[ -f $binary && -x $binary ]] || die "--binary $binary is not an executable file"
		src=$binary
	else
		src=$(build_binary)
	fi
	local version
	version=$("$src" --version 2>/dev/null) || true
	[[ $version == "dbguard "* ]] || die "$src is not a dbguard binary (its --version printed: ${version:-nothing})"

	# Every check comes before the first change, so a refusal leaves the
	# system as it was.
	if [[ -L $dest || (-e $dest && ! -f $dest) ]]; then
		die "refusing to replace $dest: not a file install.sh installed; move it away or pass --bin-dir"
	fi
	if [[ -e $dest ]] && ! is_our_binary "$dest" && ! cmp -s -- "$src" "$dest"; then
		die "refusing to overwrite $dest: install.sh did not install it; move it away or pass --bin-dir"
	fi
	check_dir "$bin_dir"
	check_dir "$shim_dir"
	[[ -w $bin_dir || ! -e $bin_dir ]] || die "no permission to write in $bin_dir"
	[[ -w $shim_dir || ! -e $shim_dir ]] || die "no permission to write in $shim_dir"
	local tool link target
	for tool in "${TOOLS[@]}"; do
		link=$shim_dir/$tool
		if [[ -L $link ]]; then
			target=$(readlink -- "$link")
			[[ $target == "$dest" ]] && continue
			contains "$link" ${m_links[@]+"${m_links[@]}"} && [[ $target == "$m_binary" ]] && continue
			die "refusing to replace $link: it links to $target, not to $dest; move it away or pass --shim-dir"
		elif [[ -e $link ]]; then
			die "refusing to overwrite $link: install.sh did not create it; move it away or pass --shim-dir"
		fi
	done
	local shell='' rc=''
	if ((modify_rc)); then
		[[ -n ${HOME:-} ]] || die "HOME is not set, so there is no rc file to modify"
		shell=$(shell_of) || die "cannot tell your shell from SHELL=${SHELL:-}; pass --shell bash, zsh or fish"
		rc=$(rc_file_for "$shell")
		[[ ! -e $rc || -f $rc ]] || die "$rc is not a regular file"
	fi

	make_dir "$bin_dir"
	make_dir "$shim_dir"
	if [[ -f $dest ]] && cmp -s -- "$src" "$dest"; then
		say "kept $dest ($version, unchanged)"
	else
		tmp_binary=$(mktemp -- "$bin_dir/.dbguard.XXXXXX")
		trap remove_tmp_binary EXIT
		cp -- "$src" "$tmp_binary"
		chmod 0755 -- "$tmp_binary"
		# A rename, so a running dbguard keeps its old file and no one sees half a binary.
		mv -f -- "$tmp_binary" "$dest"
		tmp_binary=
		say "installed $dest ($version)"
	fi

	local marker=$m_marker
	if [[ ! -e $shim_dir/$MARKER ]]; then
		printf '%s\n' "dbguard shim directory (made by install.sh): dbguard never looks for real tools here." \
			>"$shim_dir/$MARKER"
		marker=$shim_dir/$MARKER
	fi
	for tool in "${TOOLS[@]}"; do
		link=$shim_dir/$tool
		if [[ -L $link && $(readlink -- "$link") == "$dest" ]]; then
			say "kept $link -> $dest"
		else
			ln -sfn -- "$dest" "$link"
			say "linked $link -> $dest"
		fi
	done

	local rcs=(${m_rcs[@]+"${m_rcs[@]}"}) rcs_created=(${m_rcs_created[@]+"${m_rcs_created[@]}"})
	if ((modify_rc)); then
		local block
		block=$(rc_block_for "$shell")
		if [[ -f $rc ]] && grep -qF "$RC_START" "$rc"; then
			if [[ $(awk -v start="$RC_START" -v end="$RC_END" '
				index($0, start) == 1 { on = 1 } on { print } on && index($0, end) == 1 { on = 0 }' "$rc") == "$block" ]]; then
				say "kept the dbguard lines in $rc"
			else
				# An earlier install with other paths: swap in the new lines.
				{
					without_block "$rc"
					printf '%s\n' "$block"
				} | rewrite "$rc"
				say "updated the dbguard lines in $rc"
			fi
		else
			if [[ ! -e $rc ]]; then
				make_dir "$(dirname -- "$rc")"
				: >"$rc"
				rcs_created+=("$rc")
			fi
			# Start on a fresh line even when the file does not end in one.
			if [[ -s $rc && -n $(tail -c 1 -- "$rc") ]]; then
				printf '\n' >>"$rc"
			fi
			printf '%s\n' "$block" >>"$rc"
			say "added the dbguard lines to $rc"
		fi
		contains "$rc" ${rcs[@]+"${rcs[@]}"} || rcs+=("$rc")
	fi

	# An earlier install elsewhere (another --bin-dir) is replaced by this one.
	if [[ -n $m_binary && $m_binary != "$dest" ]] && is_our_binary "$m_binary"; then
		rm -f -- "$m_binary"
		say "removed the previous install's binary $m_binary"
	fi

	local sha dir
	sha=$(sha256_of "$dest")
	{
		printf '# dbguard install manifest: what install.sh created; install.sh --uninstall removes exactly this.\n'
		printf 'binary %s\n' "$dest"
		printf 'sha256 %s\n' "$sha"
		for tool in "${TOOLS[@]}"; do printf 'link %s\n' "$shim_dir/$tool"; done
		if [[ -n $marker ]]; then printf 'marker %s\n' "$marker"; fi
		for dir in ${m_dirs[@]+"${m_dirs[@]}"} ${created_dirs[@]+"${created_dirs[@]}"}; do
			if [[ -d $dir ]]; then printf 'dir %s\n' "$dir"; fi
		done
		for rc in ${rcs[@]+"${rcs[@]}"}; do printf 'rc %s\n' "$rc"; done
		for rc in ${rcs_created[@]+"${rcs_created[@]}"}; do printf 'rc-created %s\n' "$rc"; done
	} >"$manifest.tmp"
	mv -f -- "$manifest.tmp" "$manifest"

	local show_shell
	show_shell=$(shell_of) || show_shell=bash
	say ""
	say "dbguard is installed; psql, alembic, dropdb and pg_restore are guarded once $shim_dir is first on PATH."
	if ((modify_rc)); then
		say "New $show_shell shells get it from $rc. For this shell, run:"
	else
		say "Add this line to $(rc_file_for "$show_shell") (or run install.sh again with --modify-rc):"
		say ""
		say "    $(rc_line_for "$show_shell")"
		say ""
		say "It keeps the shims first even after a virtualenv is activated. For this shell, run:"
	fi
	say ""
	say "    $(path_line_for "$show_shell")"
	say ""
	say "Then check with: dbguard doctor"
	case ":${PATH:-}:" in
	*":$bin_dir:"*) ;;
	*) say "($bin_dir is not on your PATH; until it is, run $dest doctor)" ;;
	esac
}

# In braces, ending in exit: bash reads this whole command before running
# it and never reads past it, so a checkout that changes this file during
# the minutes-long build cannot change what the running script does.
{
	if ((uninstall)); then
		uninstall_dbguard
	else
		install_dbguard
	fi
	exit
}
