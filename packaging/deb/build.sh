#!/usr/bin/env bash
# Builds the Debian package from this tree:
#   packaging/deb/build.sh            release build, target/debian/*.deb
#   PROFILE=debug packaging/deb/build.sh   packs target/debug's binary (tests)
# It needs dpkg-dev (dpkg-shlibdeps) and binutils (strip); lintian checks
# the result when installed.
set -euo pipefail
cd "$(dirname "$0")/../.."

profile="${PROFILE:-release}"
name=piwigo-s3upload
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
out=target/debian
deb="$out/${name}_${version}-1_${arch}.deb"

if [ "$profile" = release ]; then
  cargo build --release --locked
else
  # The same targets as the test run, so its build is reused.
  cargo build --locked --all-targets
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"

install -D -m 0755 "target/$profile/$name" "$root/usr/bin/$name"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/$name"
# The unit as shipped, with the packaged binary's path.
install -d "$root/usr/lib/systemd/system"
sed "s#/usr/local/bin/$name#/usr/bin/$name#g" "packaging/$name.service" \
  > "$root/usr/lib/systemd/system/$name.service"
chmod 0644 "$root/usr/lib/systemd/system/$name.service"
# No config in /etc: `init` writes it (0640 root:piwigo-s3upload) and
# never replaces a file without --force; the example is in the docs.
install -D -m 0644 packaging/deb/$name.1 "$root/usr/share/man/man1/$name.1"
gzip -9n "$root/usr/share/man/man1/$name.1"
doc="$root/usr/share/doc/$name"
install -D -m 0644 packaging/deb/copyright "$doc/copyright"
# The binary links every crate of its dependency graph statically: their
# notices and licence texts travel with it.
python3 packaging/deb/crate_licenses.py | gzip -9n > "$doc/third-party-licenses.gz"
chmod 0644 "$doc/third-party-licenses.gz"
install -D -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/$name"
install -m 0644 README.md "$doc/README.md"
install -m 0644 config.example.toml "$doc/config.example.toml"
gzip -9n "$doc/README.md"
date=$(git log -1 --format=%aD 2>/dev/null || date -R)
maintainer=$(git log -1 --format='%an <%ae>' 2>/dev/null || echo "piwigo-s3upload <root@localhost>")
printf '%s (%s-1) unstable; urgency=medium\n\n  * Package of %s %s.\n\n -- %s  %s\n' \
  "$name" "$version" "$name" "$version" "$maintainer" "$date" \
  | gzip -9n > "$doc/changelog.Debian.gz"
# The companion Piwigo plugin, for the admin to copy (or link) into
# Piwigo's plugins/ directory.
if [ -d piwigo-plugin ]; then
  install -d "$root/usr/share/$name"
  cp -r piwigo-plugin "$root/usr/share/$name/piwigo-plugin"
  find "$root/usr/share/$name" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
fi

install -d "$root/DEBIAN"
# Library dependencies, as dpkg-shlibdeps finds them for the binary.
mkdir -p "$work/shlibs/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$name" "$name" > "$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O "$root/usr/bin/$name" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<END
Package: $name
Version: $version-1
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: adduser, ca-certificates, $shlibs
Section: web
Priority: optional
Description: copies every full-size photo of a Piwigo gallery to S3
 A daemon that runs beside Piwigo and keeps an off-site copy of every
 full-size photo in Amazon S3 or any S3-compatible store (MinIO, Garage,
 Ceph, Cloudflare R2, Backblaze B2, Wasabi). It watches Piwigo's database
 for new photos, uploads each exactly once with an end-to-end md5 check,
 and records the result in its own tables.
END
for script in postinst prerm postrm; do
  install -m 0755 "packaging/deb/$script" "$root/DEBIAN/$script"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
  > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"

mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
