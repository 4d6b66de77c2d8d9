#!/bin/sh
# Captures BIRD's replies byte for byte into DIR/NAME.txt, one file per
# command, from the bird on PATH (or BIRD=/opt/bird-3.3.2/sbin/bird):
#
#   sh capture.sh 2.0.12
#   BIRD=/opt/bird-3.3.2/sbin/bird sh capture.sh 3.3.2
#
# The config is integration_test.go's birdConf plus a long protocol name and
# a passive BGP protocol (it never connects).
set -eu
out="$(cd "$(dirname "$0")" && pwd)/$1"
bird="${BIRD:-bird}"
tmp="$(mktemp -d)"
trap 'kill "$(cat "$tmp/bird.pid")" 2>/dev/null || true; rm -rf "$tmp"' EXIT
cat >"$tmp/bird.conf" <<'CONF'
router id 10.255.0.1;
log stderr all;
protocol device {}
protocol static wg_vip4 { disabled; ipv4; route 192.168.99.0/24 blackhole; }
protocol static wg_up { ipv4; route 192.168.98.0/24 blackhole; }
protocol static a_very_long_protocol_name_here { ipv4; route 192.168.97.0/24 blackhole; }
# Passive: it never connects anywhere.
protocol bgp bgp_router { local as 65000; neighbor 192.0.2.1 as 65001; passive on; hold time 90; ipv4 { import none; export none; }; }
CONF
"$bird" -c "$tmp/bird.conf" -s "$tmp/bird.ctl" -P "$tmp/bird.pid"
sleep 1
mkdir -p "$out"
python3 - "$tmp/bird.ctl" "$out" <<'PY'
import socket, sys, time
sock, out = sys.argv[1], sys.argv[2]
def reply(f):
    b = b""
    while True:
        line = f.readline()
        b += line
        if len(line) >= 5 and line[:4].isdigit() and line[4:5] == b" ":
            return b
s = socket.socket(socket.AF_UNIX); s.connect(sock); f = s.makefile("rb")
open(out + "/greeting.txt", "wb").write(reply(f))
def cmd(name, c):
    s.sendall(c.encode() + b"\n")
    open(out + "/" + name + ".txt", "wb").write(reply(f))
cmd("show-status", "show status")
cmd("show-protocols", "show protocols")
cmd("enable", 'enable "wg_vip4"')
cmd("enable-again", 'enable "wg_vip4"')
cmd("show-protocols-all", "show protocols all")
cmd("disable", 'disable "wg_vip4"')
cmd("show-protocols-after-disable", 'show protocols "wg_vip4"')
cmd("disable-again", 'disable "wg_vip4"')
cmd("enable-nosuch", 'enable "wg_nosuch"')
cmd("enable-unquoted-nosuch", "enable wg_nosuch")
cmd("show-protocols-nosuch", 'show protocols "wg_nosuch"')
# Pipelined: the state right after disable, before BIRD's event loop ran.
s.sendall(b'disable "wg_up"\nshow protocols "wg_up"\n')
reply(f)
open(out + "/show-protocols-right-after-disable.txt", "wb").write(reply(f))
cmd("enable-wg_up", 'enable "wg_up"')
cmd("configure", "configure")
time.sleep(0.5)
# A changed route makes BIRD reconfigure the protocol.
conf = sock[:-len("bird.ctl")] + "bird.conf"
text = open(conf).read().replace("192.168.98.0/24", "192.168.96.0/24").replace("hold time 90", "hold time 60")
open(conf, "w").write(text)
cmd("configure-changed", "configure")
PY
# The temp dir's name differs on every run.
sed -i "s|$tmp/|/tmp/capture/|g" "$out"/*.txt
