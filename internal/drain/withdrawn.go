package drain

import (
	"fmt"
	"strings"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/health"
)

// Withdrawn says what keeps a drained service from being withdrawn in
// BIRD, "" when its protocols are all disabled. It fails when the service
// is no longer drained (someone undrained it meanwhile) or no longer in
// the status.
func Withdrawn(all []api.ServiceStatus, service string) (string, error) {
	for _, st := range all {
		if st.Name != service {
			continue
		}
		if st.Drain == nil {
			return "", fmt.Errorf("%s was undrained while waiting", service)
		}
		if st.BIRDError != "" {
			return "BIRD: " + st.BIRDError, nil
		}
		if len(st.Protocols) == 0 {
			return "BIRD protocols not read yet", nil
		}
		var up []string
		for _, p := range st.Protocols {
			if p.Enabled() {
				up = append(up, fmt.Sprintf("%s (%s)", p.Name, p.State))
			}
		}
		if len(up) > 0 {
			return "BIRD protocol still enabled: " + strings.Join(up, ", "), nil
		}
		if st.State != health.Withdrawn.String() {
			return "state " + st.State, nil
		}
		return "", nil
	}
	return "", fmt.Errorf("%s is no longer in wgbird's status", service)
}
