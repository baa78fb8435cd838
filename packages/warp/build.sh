# packages/warp: /usr/bin/warp, the repository key the image trusts and the
# default repository list (see packages/README.md for the environment, and
# docs/warp.md for what warp reads).

install -d -m 0755 "$DESTDIR/usr/bin" "$DESTDIR/usr/share/warp/keys" \
	"$DESTDIR/usr/share/doc/warp"
install -m 0755 "$SRCDIR/warp" "$DESTDIR/usr/bin/warp"

# A key is installed as <keynum>.pub, the 16 hex digits of the 8 bytes after
# "Ed" in its base64 line: the name warp's messages and `warp key` use.
pub=$SRCDIR/repo-key.pub
keynum=$(sed -n 2p "$pub" | base64 -d | od -An -tx1 -j2 -N8 | tr -d ' \n')
case $keynum in
????????????????) ;;
*)
	echo "error: $pub is not a signify public key (keynum: '$keynum')" >&2
	exit 1
	;;
esac
install -m 0644 "$pub" "$DESTDIR/usr/share/warp/keys/$keynum.pub"

# The default repository list: the boot media's own repository (`./k1os iso`
# puts the signed repository on the ISO as /repo, and stage 1 leaves the media
# mounted at $K1OS_RUN_MEDIA, /run/k1os/media), so packages install with no
# network. Where the media is not mounted (k1os.toram) warp skips it. An
# administrator adds more with `warp repo add`, which writes
# /etc/warp/repositories.
case $K1OS_RUN_MEDIA in
/?*) ;;
*)
	echo "error: K1OS_RUN_MEDIA ('$K1OS_RUN_MEDIA') is not the contract's media path" >&2
	exit 1
	;;
esac
{
	cat <<'LIST'
# warp's default repositories, one `NAME URL` a line (http:// or file://).
# `warp repo add NAME URL` writes /etc/warp/repositories, which replaces this
# list (starting from it). Example of a network repository:
# k1os http://10.0.2.100/
LIST
	echo "media file://$K1OS_RUN_MEDIA/repo/"
} > "$DESTDIR/usr/share/warp/repositories"
chmod 0644 "$DESTDIR/usr/share/warp/repositories"

cat > "$DESTDIR/usr/share/doc/warp/README" <<'DOC'
warp is K1OS's package manager: `warp --help`. Packages install under
/usr/local and /opt only. Trusted repository keys: /usr/share/warp/keys/ (from
the image) and /etc/warp/keys.d/ (added with `warp key add`).

warp is part of K1OS (Apache-2.0, /usr/share/doc/k1os/licenses/standard/);
the Rust crates compiled into it, and their licences, are listed in
/usr/share/doc/k1os/THIRD-PARTY-NOTICES.
DOC
chmod 0644 "$DESTDIR/usr/share/doc/warp/README"
