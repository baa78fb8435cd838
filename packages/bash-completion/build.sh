# packages/bash-completion: Debian's completion scripts under
# /usr/local/share/bash-completion (from /usr/share/bash-completion), the
# login hook /usr/local/etc/profile.d/bash_completion.sh (profile.sh here) and
# the notices (see packages/README.md for the environment). A repository
# package: everything goes under /usr/local.
dpkg-deb -x "$SRCDIR/bash-completion.deb" "$WORKDIR/deb"
from=$WORKDIR/deb/usr/share/bash-completion
share=$DESTDIR/usr/local/share/bash-completion

# The scripts, completions and helpers only (not Debian's debhelper add-on,
# cmake and pkg-config files, which name /usr/share). The completions'
# symlinks (c++ -> gcc) are relative and stay so.
install -d -m 0755 "$DESTDIR/usr/local/share"
cp -R "$from" "$share"
find "$share" -type d -exec chmod 0755 {} +
find "$share" -type f -exec chmod 0644 {} +
if find "$share" -type l -lname '/*' | grep .; then
	echo "error: absolute symlinks above would point outside /usr/local" >&2
	exit 1
fi

# bash_completion finds completions/ next to itself (and in
# $XDG_DATA_DIRS, /usr/local/share by default): check that the moved tree
# loads one on demand, with the bash it depends on and nothing of the host.
bash=$SYSROOT/usr/local/bin/bash
loaded=$(env -i HOME=/nonexistent XDG_DATA_DIRS=/nonexistent "$bash" --norc --noprofile -c \
	". '$share/bash_completion' && __load_completion tar && complete -p tar")
[ "$loaded" = "complete -F _tar tar" ] || {
	echo "error: the moved bash_completion did not load completions/tar (got '$loaded')" >&2
	exit 1
}

install -d -m 0755 "$DESTDIR/usr/local/etc/profile.d"
install -m 0644 "$PKGDIR/profile.sh" "$DESTDIR/usr/local/etc/profile.d/bash_completion.sh"

doc=$DESTDIR/usr/local/share/doc/bash-completion
install -d -m 0755 "$doc"
install -m 0644 "$WORKDIR/deb/usr/share/doc/bash-completion/copyright" "$doc/copyright"
install -m 0644 "$SRCDIR/GPL-2" "$doc/GPL-2"
cat > "$doc/README" <<DOC
bash-completion $PKG_VERSION for K1OS: Debian 12's bash-completion, in
/usr/local/share/bash-completion. A login bash (\`bash -l\`) loads it through
/usr/local/etc/profile.d/bash_completion.sh; another shell can run
\`. /usr/local/share/bash-completion/bash_completion\`. Packages add
completions in /usr/local/share/bash-completion/completions/, users in
~/.local/share/bash-completion/completions/.

Licence: GPL-2.0-or-later (copyright; the text is GPL-2 in this directory,
where copyright names /usr/share/common-licenses/GPL-2).

Corresponding source: the Debian source package bash-completion 1:2.11-6
(https://snapshot.debian.org/package/bash-completion/1:2.11-6/), and from the
K1OS project on request, for at least three years.
DOC
chmod 0644 "$doc/README"
