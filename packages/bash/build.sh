# packages/bash: /usr/local/bin/bash from Debian's bash-static, with its
# notices (see packages/README.md for the environment). A repository package:
# everything goes under /usr/local.
dpkg-deb -x "$SRCDIR/bash-static.deb" "$WORKDIR/deb"
dpkg-deb -x "$SRCDIR/libc-dev-bin.deb" "$WORKDIR/libc"
bash=$WORKDIR/deb/bin/bash-static

# The right binary: it runs here (static, x86_64 like the image) and is the
# version this package claims.
version=$("$bash" -c 'echo "$BASH_VERSION"')
case $PKG_VERSION in
"${version%%(*}"-*) ;;
*)
	echo "error: $SRCDIR/bash-static.deb holds bash $version, not $PKG_VERSION" >&2
	exit 1
	;;
esac

install -d -m 0755 "$DESTDIR/usr/local/bin" "$DESTDIR/usr/local/share/doc/bash"
install -m 0755 "$bash" "$DESTDIR/usr/local/bin/bash"

doc=$DESTDIR/usr/local/share/doc/bash
install -m 0644 "$WORKDIR/deb/usr/share/doc/bash-static/copyright" "$doc/copyright"
install -m 0644 "$WORKDIR/libc/usr/share/doc/libc-dev-bin/copyright" "$doc/copyright.glibc"
install -m 0644 "$SRCDIR/GPL-3" "$doc/GPL-3"
install -m 0644 "$SRCDIR/LGPL-2.1" "$doc/LGPL-2.1"
cat > "$doc/README" <<DOC
bash $PKG_VERSION for K1OS: Debian 12's bash-static, a statically linked GNU
Bash. Start it as \`bash -l\` to read /etc/profile and the login hooks in
/usr/local/etc/profile.d/ (bash-completion installs one).

Licences: Bash is GPL-3.0-or-later (copyright, GPL-3); the GNU C Library
linked into the binary is LGPL-2.1-or-later (copyright.glibc, LGPL-2.1).
The copyright files name these texts /usr/share/common-licenses/NAME; they
are NAME in this directory. (They also name the GPL-2 and the GFDL-1.3, for
bash's examples and manual and glibc's utilities, which this package does
not hold.)

Corresponding source: the Debian source packages bash 5.2.15-2 and glibc
2.36-9+deb12u14 (https://snapshot.debian.org/package/bash/5.2.15-2/,
https://snapshot.debian.org/package/glibc/2.36-9+deb12u14/), and from the
K1OS project on request, for at least three years.
DOC
chmod 0644 "$doc/README"
