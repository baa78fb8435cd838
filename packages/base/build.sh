# packages/base: the root filesystem skeleton from rootfs/ (see packages/README.md
# for the environment). Files ending in `.in` are templates: `@K1OS_…@` is
# replaced by the value host-tools passes in the environment, and the suffix
# dropped.

# The FHS directories, including the mount points stage 1 moves /proc /sys /dev
# /run into (they must exist in the image) and what git cannot store (empty
# directories, modes).
for d in bin sbin lib etc/profile.d usr/bin usr/sbin usr/lib usr/share \
	usr/local/bin usr/local/sbin var/log var/lib var/cache var/spool var/tmp \
	home mnt media opt srv proc sys dev run; do
	install -d -m 0755 "$DESTDIR/$d"
done
install -d -m 0700 "$DESTDIR/root"
install -d -m 1777 "$DESTDIR/tmp"
ln -s ../run "$DESTDIR/var/run"
ln -s ../run/lock "$DESTDIR/var/lock"

# rootfs/, modes normalised: whatever the checkout's umask, 0755 for
# directories and executables, 0644 for the rest.
cp -R "$SRCDIR/rootfs/." "$DESTDIR/"
find "$DESTDIR" -type d -exec chmod u=rwx,go=rx {} +
find "$DESTDIR" -type f -perm -u=x -exec chmod 0755 {} +
find "$DESTDIR" -type f ! -perm -u=x -exec chmod 0644 {} +
chmod 0700 "$DESTDIR/root"
chmod 1777 "$DESTDIR/tmp"
chmod 0640 "$DESTDIR/etc/shadow"
ln -s ../proc/self/mounts "$DESTDIR/etc/mtab"
# DNS servers come with DHCP leases (/usr/share/udhcpc/default.script), kept
# in RAM under the run directory: the data partition is not written at every
# lease. Dangling until a lease; resolvers then use 127.0.0.1.
ln -s "..$K1OS_RUN_DIR/network/resolv.conf" "$DESTDIR/etc/resolv.conf"
# Debian's busybox udhcpc runs /etc/udhcpc/default.script unless told
# otherwise: a hand-started udhcpc configures the interface like the service.
install -d -m 0755 "$DESTDIR/etc/udhcpc"
ln -s ../../usr/share/udhcpc/default.script "$DESTDIR/etc/udhcpc/default.script"

# Templates.
esc() { printf '%s' "$1" | sed 's/[\\|&]/\\&/g'; }
script=
for var in $(env | sed -n 's/^\(K1OS_[A-Z0-9_]*\)=.*/\1/p' | sort); do
	eval "value=\$$var"
	script="${script}s|@${var}@|$(esc "$value")|g;"
done
find "$DESTDIR" -type f -name '*.in' | sort | while read -r in; do
	out=${in%.in}
	sed -e "$script" "$in" > "$out"
	chmod --reference="$in" "$out"
	rm "$in"
	if grep -n '@K1OS_[A-Z0-9_]*@' "$out"; then
		echo "error: ${out#"$DESTDIR"}: no value for the template variables above" >&2
		exit 1
	fi
done
