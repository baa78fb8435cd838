# packages/busybox: /bin/busybox from Debian's busybox-static and a link per
# applet, where `busybox --list-full` puts it (see packages/README.md for the
# environment). The binary runs on the build host to list its applets: the
# host must be x86_64, as the image is.
dpkg-deb -x "$SRCDIR/busybox-static.deb" "$WORKDIR/deb"
bb=$WORKDIR/deb/bin/busybox

install -d -m 0755 "$DESTDIR/bin" "$DESTDIR/sbin" "$DESTDIR/usr/bin" "$DESTDIR/usr/sbin"
install -m 0755 "$bb" "$DESTDIR/bin/busybox"

# Relative links, so that they resolve in the staging tree too.
"$bb" --list-full | sort | while read -r applet; do
	case $applet in
	bin/busybox | linuxrc) continue ;; # the binary itself; initrd-only
	bin/*) target=busybox ;;
	sbin/*) target=../bin/busybox ;;
	usr/bin/* | usr/sbin/*) target=../../bin/busybox ;;
	*)
		echo "error: applet at an unexpected place: $applet" >&2
		exit 1
		;;
	esac
	ln -s "$target" "$DESTDIR/$applet"
done

# The licence notices: Debian's for busybox, glibc's (linked into the static
# binary), and the texts they name as /usr/share/common-licenses/NAME.
dpkg-deb -x "$SRCDIR/libc-dev-bin.deb" "$WORKDIR/libc"
doc=$DESTDIR/usr/share/doc/busybox
install -d -m 0755 "$doc"
install -m 0644 "$WORKDIR/deb/usr/share/doc/busybox-static/copyright" "$doc/copyright"
install -m 0644 "$WORKDIR/libc/usr/share/doc/libc-dev-bin/copyright" "$doc/copyright.glibc"
install -m 0644 "$SRCDIR/GPL-2" "$doc/GPL-2"
install -m 0644 "$SRCDIR/LGPL-2.1" "$doc/LGPL-2.1"

# The image's stage 2 is busybox init and its shells: make sure they are here.
for f in sbin/init bin/sh sbin/syslogd sbin/klogd; do
	[ -L "$DESTDIR/$f" ] || { echo "error: busybox has no $f applet" >&2; exit 1; }
done
