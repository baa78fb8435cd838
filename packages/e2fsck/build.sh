# packages/e2fsck: /usr/local/sbin/e2fsck from Debian's e2fsck-static, the
# fsck.ext2/3/4 names under which fsck(8) runs it, and the notices (see
# packages/README.md for the environment). A repository package: everything
# goes under /usr/local.
dpkg-deb -x "$SRCDIR/e2fsck-static.deb" "$WORKDIR/deb"
dpkg-deb -x "$SRCDIR/libc-dev-bin.deb" "$WORKDIR/libc"
e2fsck=$WORKDIR/deb/sbin/e2fsck.static

# The right binary: it runs here (static, x86_64 like the image) and is the
# version this package claims (`e2fsck -V` writes "e2fsck 1.47.0 (date)" to
# stderr).
version=$("$e2fsck" -V 2>&1 | sed -n '1s/^e2fsck \([^ ]*\) .*/\1/p')
case $PKG_VERSION in
"$version"-*) ;;
*)
	echo "error: $SRCDIR/e2fsck-static.deb holds e2fsck '$version', not $PKG_VERSION" >&2
	exit 1
	;;
esac

install -d -m 0755 "$DESTDIR/usr/local/sbin" "$DESTDIR/usr/local/share/doc/e2fsck"
install -m 0755 "$e2fsck" "$DESTDIR/usr/local/sbin/e2fsck"
# As e2fsprogs installs them: the names fsck(8) and scripts written for
# other systems call (K1OS's busybox has no fsck and no e2fsck applet).
for t in ext2 ext3 ext4; do
	ln -s e2fsck "$DESTDIR/usr/local/sbin/fsck.$t"
done

doc=$DESTDIR/usr/local/share/doc/e2fsck
install -m 0644 "$WORKDIR/deb/usr/share/doc/e2fsck-static/copyright" "$doc/copyright"
install -m 0644 "$WORKDIR/libc/usr/share/doc/libc-dev-bin/copyright" "$doc/copyright.glibc"
for l in GPL-2 LGPL-2 LGPL-2.1; do
	install -m 0644 "$SRCDIR/$l" "$doc/$l"
done
cat > "$doc/README" <<DOC
e2fsck $PKG_VERSION for K1OS: Debian 12's e2fsck-static, the statically
linked ext2/ext3/ext4 checker, as /usr/local/sbin/e2fsck and fsck.ext2,
fsck.ext3, fsck.ext4. Check an unmounted file system with \`e2fsck -f DEVICE\`
(\`-n\` to only report).

Licences: e2fsck and most of e2fsprogs are GPL-2 (GPL-2), its libraries
LGPL-2 (LGPL-2), libuuid BSD-3-Clause, dict.c Kazlib's licence; all are in
copyright. The GNU C Library linked into the binary is LGPL-2.1-or-later
(copyright.glibc, LGPL-2.1). The copyright files name these texts
/usr/share/common-licenses/NAME; they are NAME in this directory. (They also
name the Apache-2.0, for files of e2fsprogs that are not in e2fsck.)

Corresponding source: the Debian source packages e2fsprogs 1.47.0-2 and glibc
2.36-9+deb12u12 (https://snapshot.debian.org/package/e2fsprogs/1.47.0-2/,
https://snapshot.debian.org/package/glibc/2.36-9+deb12u12/), and from the
K1OS project on request, for at least three years.
DOC
chmod 0644 "$doc/README"
