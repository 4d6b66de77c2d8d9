package readme

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Section returns the text under heading (a whole line such as
// "### Metrics") in the README.md at the module root, up to the next
// heading of the same or a higher level. The module root is found by
// walking up from the working directory to the first go.mod.
func Section(heading string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return "", err
	}
	return section(string(b), heading)
}

func section(text, heading string) (string, error) {
	level := strings.IndexByte(heading, ' ')
	if level < 1 || strings.Trim(heading[:level], "#") != "" {
		return "", fmt.Errorf("%q is not a markdown heading", heading)
	}
	var out []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		if line == heading {
			in = true
			continue
		}
		if !in {
			continue
		}
		if h := strings.IndexByte(line, ' '); h > 0 && h <= level && strings.Trim(line[:h], "#") == "" {
			break
		}
		out = append(out, line)
	}
	if !in {
		return "", fmt.Errorf("README.md has no heading %q", heading)
	}
	return strings.Join(out, "\n"), nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
