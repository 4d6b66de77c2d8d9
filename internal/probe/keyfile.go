package probe

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// GenerateKey is the logic of `wgbird probe-key`: it generates the probe's
// key pair, writes the private key to path with mode 0600 (refusing to
// replace an existing file unless force) and returns the [Peer] stanza to
// add to the server's wg0.conf.
//
// The stanza has no AllowedIPs: wireguard-go looks a handshake initiation's
// peer up by its public key alone and answers it, and learns the endpoint
// from the packet; AllowedIPs only route and filter data packets, which the
// probe never sends. A peer without AllowedIPs therefore answers handshakes
// and can never carry traffic (verified against wireguard-go in-process and
// against the wireguard-go binary in the integration test).
func GenerateKey(path string, force bool) (stanza string, err error) {
	k, err := NewPrivateKey()
	if err != nil {
		return "", err
	}
	if err := writeKeyFile(path, k.String()+"\n", force); err != nil {
		return "", err
	}
	return Stanza(k.PublicKey()), nil
}

// Stanza returns the wg0.conf [Peer] section declaring the probe peer.
func Stanza(pub PublicKey) string {
	return "# wgbird health probe: answers handshakes only, no AllowedIPs needed.\n" +
		"[Peer]\n" +
		"PublicKey = " + pub.String() + "\n"
}

// writeKeyFile writes data to path with mode 0600 through a temporary file
// in the same directory, so path never holds a partial key: without force it
// is linked into place, which fails when path exists.
func writeKeyFile(path, data string, force bool) error {
	if !force {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("writing probe key: %s exists (use force to replace it)", path)
		}
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing probe key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a link or a rename, only the temporary name goes
	// CreateTemp uses 0600 already; make it explicit against a future change.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("writing probe key: %w", err)
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return fmt.Errorf("writing probe key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing probe key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing probe key: %w", err)
	}
	if force {
		err = os.Rename(tmp, path)
	} else {
		err = os.Link(tmp, path)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("writing probe key: %s exists (use force to replace it)", path)
		}
	}
	if err != nil {
		return fmt.Errorf("writing probe key: %w", err)
	}
	return nil
}

// LoadPrivateKey reads a private key file as written by GenerateKey or wg
// genkey. The file must not be accessible to group or others.
func LoadPrivateKey(path string) (PrivateKey, error) {
	s, err := readSecret(path)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("reading probe key: %w", err)
	}
	k, err := ParsePrivateKey(s)
	if err != nil {
		return k, fmt.Errorf("reading probe key %s: %w", path, err)
	}
	return k, nil
}

// LoadPresharedKey reads a preshared key file as written by wg genpsk. The
// file must not be accessible to group or others.
func LoadPresharedKey(path string) (PresharedKey, error) {
	s, err := readSecret(path)
	if err != nil {
		return PresharedKey{}, fmt.Errorf("reading preshared key: %w", err)
	}
	k, err := ParsePresharedKey(s)
	if err != nil {
		return k, fmt.Errorf("reading preshared key %s: %w", path, err)
	}
	return k, nil
}

func readSecret(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if m := st.Mode().Perm(); m&0o077 != 0 {
		return "", fmt.Errorf("%s has mode %04o, want 0600 (chmod 600 %s)", path, m, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}
