#!/bin/sh
# deb-test.sh DEB UPGRADE_DEB VERSION: install the wgbird package DEB on this
# machine with apt-get, check what it installed, upgrade it to UPGRADE_DEB
# (same package, higher version) over an edited conffile, remove it, purge
# it, and check that nothing is left behind. VERSION is what 'wgbird
# version' must print. Needs root on Debian; run by 'make deb-test'.
set -eu

deb=$1
upgrade=$2
version=$3

step() { echo "deb-test: $*"; }
fail() {
	echo "deb-test: FAIL: $*" >&2
	exit 1
}
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/wgbird-deb-test.XXXXXX)
# apt: apt-get with its output in $log, shown only when it fails.
apt() {
	if ! apt-get -y -q -o DPkg::Lock::Timeout=120 "$@" >"$log" 2>&1; then
		cat "$log" >&2
		fail "apt-get $*"
	fi
}

status() { dpkg-query -W -f '${db:Status-Status}' wgbird 2>/dev/null || true; }

# Everything the package may put on the machine, and the unit's symlinks and
# deb-systemd-helper state.
leftovers() {
	for p in /usr/sbin/wgbird /lib/systemd/system/wgbird.service /etc/wgbird \
		/usr/share/man/man8/wgbird.8.gz /usr/share/bash-completion/completions/wgbird \
		/usr/share/zsh/vendor-completions/_wgbird /var/lib/wgbird /run/wgbird; do
		if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi
	done
	find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
		/var/lib/systemd/deb-systemd-helper-masked -name 'wgbird*' 2>/dev/null || true
	if getent group wgbird >/dev/null; then echo "group wgbird"; fi
}

[ "$(id -u)" = 0 ] || fail "needs root (it installs and purges the package)"
for f in "$deb" "$upgrade"; do [ -f "$f" ] || fail "no package $f"; done
# The test ends by purging wgbird: never run it over a real installation.
case "$(status)" in
"" | not-installed) ;;
*) fail "wgbird is installed here ($(status)); the test would purge it: purge it yourself first" ;;
esac
left=$(leftovers)
[ -z "$left" ] || fail "wgbird files or group exist before installing (from 'make install'?):
$left"

installed=
cleanup() {
	rm -f "$log"
	if [ -n "$installed" ] && [ "$(status)" != not-installed ] && [ -n "$(status)" ]; then
		echo "deb-test: purging wgbird after the failure" >&2
		apt-get -y -q purge wgbird >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

# --- install ---------------------------------------------------------------
step "apt-get install $deb"
installed=1
apt install "$deb"
[ "$(status)" = installed ] || fail "status after install is '$(status)'"

got=$(wgbird version)
case "$got" in
"wgbird $version"*) step "wgbird version: $got" ;;
*) fail "wgbird version printed '$got', want 'wgbird $version ...'" ;;
esac
[ "$(command -v wgbird)" = /usr/sbin/wgbird ] || fail "wgbird is $(command -v wgbird), want /usr/sbin/wgbird"

for p in /usr/sbin/wgbird /lib/systemd/system/wgbird.service /etc/wgbird/wgbird.toml \
	/usr/share/man/man8/wgbird.8.gz /usr/share/bash-completion/completions/wgbird \
	/usr/share/zsh/vendor-completions/_wgbird; do
	dpkg -L wgbird | grep -qx "$p" || fail "dpkg -L wgbird does not list $p"
	[ -f "$p" ] || fail "$p missing"
done
[ "$(stat -c '%a %U:%G' /usr/sbin/wgbird)" = "755 root:root" ] ||
	fail "/usr/sbin/wgbird is $(stat -c '%a %U:%G' /usr/sbin/wgbird)"
dpkg-query -W -f '${Conffiles}\n' wgbird | grep -q '^ /etc/wgbird/wgbird.toml ' ||
	fail "/etc/wgbird/wgbird.toml is not a conffile"
dpkg-query -W -f '${Depends}|${Recommends}\n' wgbird | grep -q 'bird2.*|.*wireguard-tools' ||
	fail "Depends/Recommends: $(dpkg-query -W -f '${Depends}|${Recommends}' wgbird)"

getent group wgbird >/dev/null || fail "postinst did not create the group wgbird"
gid=$(getent group wgbird | cut -d: -f3)
[ "$gid" -lt 1000 ] || fail "group wgbird has gid $gid, not a system group"

enabled=$(systemctl is-enabled wgbird.service 2>/dev/null || true)
[ "$enabled" = disabled ] || fail "systemctl is-enabled wgbird: '$enabled', want disabled (postinst enables nothing)"

step "systemd-analyze verify /lib/systemd/system/wgbird.service"
out=$(systemd-analyze verify /lib/systemd/system/wgbird.service 2>&1) || fail "systemd-analyze verify failed:
$out"
[ -z "$out" ] || fail "systemd-analyze verify complained:
$out"

man -w wgbird >/dev/null || fail "man -w wgbird finds no page"
out=$(MANWIDTH=80 man --warnings wgbird 2>&1 >/dev/null) || fail "man wgbird failed: $out"
[ -z "$out" ] || fail "man --warnings wgbird:
$out"
bash -c '. /usr/share/bash-completion/completions/wgbird && complete -p wgbird' >/dev/null ||
	fail "the bash completion does not register for wgbird"
if command -v zsh >/dev/null; then
	zsh -n /usr/share/zsh/vendor-completions/_wgbird || fail "zsh -n _wgbird"
fi

# --- upgrade over an edited conffile, enabled ----------------------------
step "edit the conffile, enable the unit, leave state behind, then upgrade to $upgrade"
echo "# edited by deb-test" >>/etc/wgbird/wgbird.toml
edited=$(sha256sum /etc/wgbird/wgbird.toml)
systemctl enable wgbird.service >/dev/null 2>&1 || fail "systemctl enable wgbird"
mkdir -p /var/lib/wgbird /run/wgbird
echo test >/var/lib/wgbird/deb-test-drain
old=$(dpkg-query -W -f '${Version}' wgbird)
apt install "$upgrade"
new=$(dpkg-query -W -f '${Version}' wgbird)
[ "$new" != "$old" ] || fail "version still $old after the upgrade"
[ "$(sha256sum /etc/wgbird/wgbird.toml)" = "$edited" ] || fail "the upgrade changed the edited conffile"
ls /etc/wgbird/*.dpkg-* >/dev/null 2>&1 && fail "the upgrade left $(ls /etc/wgbird/*.dpkg-*)"
enabled=$(systemctl is-enabled wgbird.service 2>/dev/null || true)
[ "$enabled" = enabled ] || fail "after the upgrade the unit is '$enabled', want enabled as the admin left it"
step "upgraded $old -> $new; conffile kept, unit still enabled"

# --- remove, then purge ----------------------------------------------------
step "apt-get remove wgbird"
apt remove wgbird
[ "$(status)" = config-files ] || fail "status after remove is '$(status)', want config-files"
[ ! -e /usr/sbin/wgbird ] || fail "remove left /usr/sbin/wgbird"
[ -f /etc/wgbird/wgbird.toml ] || fail "remove deleted the conffile (only purge may)"

step "apt-get purge wgbird"
apt purge wgbird
installed=
case "$(status)" in
"" | not-installed) ;;
*) fail "status after purge is '$(status)'" ;;
esac
if dpkg -L wgbird >/dev/null 2>&1; then fail "dpkg -L wgbird still lists files after purge"; fi
left=$(leftovers)
[ -z "$left" ] || fail "purge left behind:
$left"
step "purged; nothing left behind"
step "ok"
