package lab

import (
	"github.com/wgbird/wgbird/internal/labjudge"
)

// Mappings returns the router's UDP connection-tracking entries between
// a client and the inside (its NAT mappings), sorted by client.
func (l *Lab) Mappings() ([]labjudge.Mapping, error) {
	return labjudge.Mappings(l.NS("router"), ClientNet, PublicAddr)
}

// MappingsOf returns the router's mappings of the client called name.
func (l *Lab) MappingsOf(name string) ([]labjudge.Mapping, error) {
	all, err := l.Mappings()
	if err != nil {
		return nil, err
	}
	addr := l.ClientAddr(name)
	var out []labjudge.Mapping
	for _, m := range all {
		if m.Client.Addr() == addr {
			out = append(out, m)
		}
	}
	return out, nil
}

// ForgetMappings deletes the router's connection-tracking entries of the
// client called name, as their timeout would: its next packet, or a
// server's, makes a new mapping.
func (l *Lab) ForgetMappings(name string) error {
	return labjudge.ForgetMappings(l.NS("router"), name, l.ClientAddr(name))
}
