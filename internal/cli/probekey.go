package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/probe"
	"github.com/wgbird/wgbird/internal/wireguard"
)

type probeKeyOpts struct {
	force      bool
	iface      string
	readDevice func(ctx context.Context, name string) (*wgtypes.Device, error) // nil: wgctrl
}

func init() {
	register(&Command{
		Name:     "probe-key",
		Args:     "PATH",
		Synopsis: "create the active probe's key pair and print the lines to add to wg0.conf and wgbird.toml",
		Help: `Writes a new WireGuard private key to PATH (mode 0600; an existing file is kept
unless --force), then prints the [Peer] section to add to the server's WireGuard
config and the [service.probe] table to add below the service in wgbird.toml.
With them, wgbird performs a real handshake with its own server at every check.
The probe peer needs no AllowedIPs and can carry no traffic. On anycast servers,
set server_public_key to the key clients expect, so that a server whose key
drifted fails the probe: when --interface (default wg0) can be read, the table
printed sets it to that device's public key now.`,
		Flags: func(fs *flag.FlagSet) any {
			o := &probeKeyOpts{}
			fs.BoolVar(&o.force, "force", false, "replace an existing key file")
			fs.StringVar(&o.iface, "interface", "wg0", "the WireGuard `device` whose public key the printed table expects")
			return o
		},
		Run: func(ctx context.Context, env *Env, opts any, args []string) error {
			return probeKey(ctx, env, opts.(*probeKeyOpts), args)
		},
	})
}

func probeKey(ctx context.Context, env *Env, o *probeKeyOpts, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return withCode(ExitConfig, errors.New("want one argument, the path of the key file, such as /etc/wgbird/probe.key\n"+
			"usage: wgbird probe-key [--force] [--interface DEVICE] PATH (wgbird help probe-key)"))
	}
	// wgbird.toml wants an absolute path.
	path, err := filepath.Abs(args[0])
	if err != nil {
		return withCode(ExitConfig, fmt.Errorf("resolving %s: %w", args[0], err))
	}
	if _, err := os.Lstat(path); err == nil && !o.force {
		return fmt.Errorf("%s exists: a server may already list its public key (use --force to replace it)", path)
	}
	stanza, err := probe.GenerateKey(path, o.force)
	if err != nil {
		return err
	}
	serverKey := serverKeyLines(ctx, o)
	fmt.Fprintf(env.Stdout, `# Wrote the probe's private key to %s (mode 0600).
#
# 1. Add to the server's WireGuard config (wg0.conf) on this server, then apply
#    it, e.g. wg syncconf wg0 <(wg-quick strip wg0):

%s
# 2. Add below the [[service]] of that interface in wgbird.toml, then restart
#    wgbird:

  [service.probe]
  private_key_file = %q
%s`, path, stanza, path, serverKey)
	return nil
}

// serverKeyLines are the server_public_key lines of the printed table:
// set to the device's public key when it can be read (the key drift after
// a rotation is what only the probe catches), else commented out, saying
// why.
func serverKeyLines(ctx context.Context, o *probeKeyOpts) string {
	read := o.readDevice
	if read == nil {
		r, err := wireguard.NewReader()
		if err != nil {
			return commentedServerKey(o.iface, err)
		}
		defer r.Close()
		read = r.Device
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	dev, err := read(ctx, o.iface)
	if err == nil && dev.PrivateKey == (wgtypes.Key{}) {
		err = errors.New("it has no private key")
	}
	if err != nil {
		return commentedServerKey(o.iface, err)
	}
	return fmt.Sprintf(`  # The key clients use: %s's public key now. A server whose key drifts
  # (a rotation not done everywhere) then fails the probe.
  server_public_key = %q
`, o.iface, dev.PublicKey.String())
}

func commentedServerKey(iface string, err error) string {
	return fmt.Sprintf(`  # On anycast servers, uncomment and set the public key clients use
  # (wg show %s public-key): a server whose key drifted then fails.
  # (%s could not be read here: %v)
  # server_public_key = "..."
`, iface, iface, err)
}

// realProber adapts probe.Prober to daemon.Prober.
type realProber struct{ *probe.Prober }

var _ daemon.Prober = realProber{}

func (p realProber) PublicKey() wgtypes.Key { return wgtypes.Key(p.Prober.PublicKey()) }

// newProber is daemon.Deps.NewProber.
func newProber(s config.Service) (daemon.Prober, error) {
	c := s.Probe
	if c == nil {
		return nil, errors.New("creating probe: the service has no [service.probe]")
	}
	pr, err := probe.NewProber(probe.Config{
		Interface:        s.Interface,
		PrivateKeyFile:   c.PrivateKeyFile,
		PresharedKeyFile: c.PresharedKeyFile,
		ServerPublicKey:  c.ServerPublicKey,
		Endpoint:         c.Endpoint,
		Timeout:          c.Timeout,
	})
	if err != nil {
		return nil, err
	}
	return realProber{pr}, nil
}
