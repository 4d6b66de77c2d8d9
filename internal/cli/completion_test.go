package cli

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func completion(t *testing.T, shell string) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteCompletion(&b, shell); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// caseBlock returns the body of a shell case branch whose pattern line is
// exactly pattern, up to its ";;".
func caseBlock(script, pattern string) (string, bool) {
	_, rest, ok := strings.Cut(script, "\n"+pattern+"\n")
	if !ok {
		return "", false
	}
	body, _, _ := strings.Cut(rest, ";;")
	return body, true
}

func TestCompletionHasEveryCommandAndFlag(t *testing.T) {
	bash, zsh := completion(t, "bash"), completion(t, "zsh")

	m := regexp.MustCompile(`(?m)^    local commands="([^"]*)"$`).FindStringSubmatch(bash)
	if m == nil {
		t.Fatal("bash script has no command list")
	}
	var want []string
	for _, c := range Commands() {
		want = append(want, c.Name)
	}
	if diff := cmp.Diff(want, strings.Fields(m[1])); diff != "" {
		t.Errorf("bash command list (-want +got):\n%s", diff)
	}

	for _, c := range Commands() {
		if !strings.Contains(zsh, "\n    '"+c.Name+":") {
			t.Errorf("zsh command list lacks %s", c.Name)
		}
		flags := flagDocs(c)
		choices := argChoices(c.Args)
		bashBlock, ok := caseBlock(bash, "    "+c.Name+")")
		if !ok && len(flags)+len(choices) > 0 {
			t.Errorf("bash script has no case for %s", c.Name)
		}
		zshBlock, ok := caseBlock(zsh, "    ("+c.Name+")")
		if !ok && (len(flags) > 0 || c.Args != "") {
			t.Errorf("zsh script has no case for %s", c.Name)
		}
		for _, f := range flags {
			if !regexp.MustCompile(`flags="[^"]*--` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(bashBlock) {
				t.Errorf("bash: %s lacks flag --%s", c.Name, f.Name)
			}
			if !strings.Contains(zshBlock, "'--"+f.Name+"[") && !strings.Contains(zshBlock, "'--"+f.Name+"=[") {
				t.Errorf("zsh: %s lacks flag --%s", c.Name, f.Name)
			}
		}
		for _, a := range choices {
			if !regexp.MustCompile(`args="[^"]*\b` + regexp.QuoteMeta(a) + `\b`).MatchString(bashBlock) {
				t.Errorf("bash: %s lacks argument %s", c.Name, a)
			}
			if !strings.Contains(zshBlock, a) {
				t.Errorf("zsh: %s lacks argument %s", c.Name, a)
			}
		}
	}
}

func TestCompletionCommand(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		stdout   string // prefix
		inStderr string
	}{
		{[]string{"completion", "bash"}, ExitOK, "# bash completion for wgbird(8).", ""},
		{[]string{"completion", "zsh"}, ExitOK, "#compdef wgbird\n", ""},
		{[]string{"completion", "fish"}, ExitConfig, "", `unknown shell "fish"`},
		{[]string{"completion"}, ExitConfig, "", "want one argument"},
	} {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), tc.args, &Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errOut.String())
		}
		if !strings.HasPrefix(out.String(), tc.stdout) {
			t.Errorf("%v: stdout starts %.40q, want %q", tc.args, out.String(), tc.stdout)
		}
		if !strings.Contains(errOut.String(), tc.inStderr) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, errOut.String(), tc.inStderr)
		}
	}
}

func TestZshEscaping(t *testing.T) {
	if got, want := zshQuote("it's"), `'it'\''s'`; got != want {
		t.Errorf("zshQuote = %q, want %q", got, want)
	}
	if got, want := zshBracket(`a [b] \c`), `a \[b\] \\c`; got != want {
		t.Errorf("zshBracket = %q, want %q", got, want)
	}
	if got, want := zshColon("a:b"), `a\:b`; got != want {
		t.Errorf("zshColon = %q, want %q", got, want)
	}
}
