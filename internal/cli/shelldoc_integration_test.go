//go:build integration

package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// These tests run the generated man page and completions through the real
// man, bash and zsh. Each skips when its program is missing (CI installs
// none of them on purpose; man-db comes with Debian).

func needProgram(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

func writeTemp(t *testing.T, name string, write func(*bytes.Buffer) error) string {
	t.Helper()
	var b bytes.Buffer
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runWithDeadline(t *testing.T, d time.Duration, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func TestManRendersWithoutWarnings(t *testing.T) {
	man := needProgram(t, "man")
	page := writeTemp(t, "wgbird.8", func(b *bytes.Buffer) error { return WriteMan(b, "1.2.3", "2025-01-02") })
	out, errOut, err := runWithDeadline(t, 30*time.Second, man, "--warnings", "-l", page)
	if err != nil {
		t.Fatalf("man -l: %v\n%s", err, errOut)
	}
	if errOut != "" {
		t.Errorf("man --warnings -l printed warnings:\n%s", errOut)
	}
	for _, c := range Commands() {
		if !strings.Contains(out, "wgbird "+c.Name) {
			t.Errorf("rendered page lacks %q", "wgbird "+c.Name)
		}
	}
	for _, s := range []string{"EXIT STATUS", "SEE ALSO", "bird(8)", "wg(8)", "--config"} {
		if !strings.Contains(out, s) {
			t.Errorf("rendered page lacks %q", s)
		}
	}
}

// bashComplete runs the bash completion function for the command line
// words (the last one being completed) as bash splits it, with line as
// bash's COMP_LINE.
const bashHarness = `
script=$1; bashcomp=$2; line=$3; shift 3
if [ -n "$bashcomp" ]; then . "$bashcomp"; fi
. "$script"
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
COMP_LINE=$line; COMP_POINT=${#COMP_LINE}
_wgbird
printf '%s\n' "${COMPREPLY[@]}"
`

func TestBashCompletion(t *testing.T) {
	bash := needProgram(t, "bash")
	script := writeTemp(t, "wgbird.bash", func(b *bytes.Buffer) error { return WriteCompletion(b, "bash") })
	files := t.TempDir()
	for _, f := range []string{"a.toml", "a.txt", "b.toml"} {
		if err := os.WriteFile(filepath.Join(files, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	for _, c := range Commands() {
		all = append(all, c.Name)
	}
	all = append(all, "help")

	type tc struct {
		words []string
		line  string // "" = words joined by spaces
		want  []string
	}
	cases := []tc{
		{words: []string{"wgbird", ""}, want: all},
		{words: []string{"wgbird", "dr"}, want: []string{"drain"}},
		{words: []string{"wgbird", "help", "ve"}, want: []string{"version"}},
		{words: []string{"wgbird", "completion", ""}, want: []string{"bash", "zsh"}},
		{words: []string{"wgbird", "run", "--config", files + "/a"}, want: []string{files + "/a.toml", files + "/a.txt"}},
		{words: []string{"wgbird", "run", "-config", files + "/b"}, want: []string{files + "/b.toml"}},
		{words: []string{"wgbird", "run", "--config", "=", files + "/b"}, line: "wgbird run --config=" + files + "/b", want: []string{files + "/b.toml"}},
	}
	for _, c := range Commands() {
		var flags []string
		for _, f := range flagDocs(c) {
			flags = append(flags, "--"+f.Name)
		}
		if len(flags) > 0 {
			cases = append(cases, tc{words: []string{"wgbird", c.Name, "--"}, want: flags})
		}
	}

	bashcomps := []string{""}
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err == nil {
		bashcomps = append(bashcomps, "/usr/share/bash-completion/bash_completion")
	} else {
		t.Log("bash-completion not installed: testing the script on its own only")
	}
	for _, bc := range bashcomps {
		for _, c := range cases {
			line := c.line
			if line == "" {
				line = strings.Join(c.words, " ")
			}
			args := append([]string{"-c", bashHarness, "harness", script, bc, line}, c.words...)
			out, errOut, err := runWithDeadline(t, 30*time.Second, bash, args...)
			if err != nil || errOut != "" {
				t.Errorf("bash-completion=%q %q: %v\n%s", bc, line, err, errOut)
				continue
			}
			got := strings.Fields(out)
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("bash-completion=%q %q (-want +got):\n%s", bc, line, diff)
			}
		}
	}
}

// zshHarness starts an interactive zsh on a pty with the completion
// directory $1 in fpath, then for each further argument types it, presses
// TAB and prints what zsh showed after a "<<<CASE>>>" marker.
const zshHarness = `
zmodload zsh/zpty || exit 2
zpty z 'TERM=vt100 zsh -f -i'
# await PATTERN: read the pty into $out until it matches, for at most 10s.
await() {
  local chunk i
  for i in {1..100}; do
    while zpty -r -t z chunk; do out+=$chunk; done
    [[ $out == $~1 ]] && return 0
    sleep 0.1
  done
  return 1
}
out=
# READ''Y: the echo of the typed command must not match.
zpty -w z "PS1='%% '; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D; LISTMAX=0; print READ''Y"
await '*READY*' || { print -r -- "no prompt: $out"; exit 3 }
shift
for line; do
  out=
  zpty -w -n z "$line"$'\t'
  # zsh echoes the line, lists, then redraws the line (trailing space trimmed).
  trimmed=${line% }
  await "*${(b)trimmed}*${(b)trimmed}*"
  print -r -- "<<<CASE>>>$out"
  zpty -w -n z $'\x15'
done
zpty -d z
`

var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]|[\x00\a]|.\b")

// zshListing returns the candidates zsh listed after line in a pty
// transcript: a description listing ("name -- text") gives its names,
// anything else its words.
func zshListing(transcript, line string) []string {
	text := ansiEscape.ReplaceAllString(transcript, "")
	line = strings.TrimRight(line, " ")
	i, j := strings.Index(text, line), strings.LastIndex(text, line)
	if i < 0 || i == j {
		return nil
	}
	var out []string
	for _, l := range regexp.MustCompile(`[\r\n]+`).Split(text[i+len(line):j], -1) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "%") {
			continue
		}
		if name, _, ok := strings.Cut(l, " -- "); ok {
			out = append(out, strings.TrimSpace(name))
			continue
		}
		out = append(out, strings.Fields(l)...)
	}
	slices.Sort(out)
	return out
}

func TestZshCompletion(t *testing.T) {
	zsh := needProgram(t, "zsh")
	script := writeTemp(t, "_wgbird", func(b *bytes.Buffer) error { return WriteCompletion(b, "zsh") })
	if _, errOut, err := runWithDeadline(t, 30*time.Second, zsh, "-n", script); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, errOut)
	}
	files := t.TempDir()
	for _, f := range []string{"a1.toml", "a2.txt"} {
		if err := os.WriteFile(filepath.Join(files, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	for _, c := range Commands() {
		all = append(all, c.Name)
	}
	all = append(all, "help")
	slices.Sort(all)

	type tc struct {
		line string
		want []string
	}
	cases := []tc{
		{"wgbird ", all},
		{"wgbird help ", all},
		{"wgbird completion ", []string{"bash", "zsh"}},
		{"wgbird run --config " + files + "/a", []string{"a1.toml", "a2.txt"}},
	}
	for _, c := range Commands() {
		var flags []string
		for _, f := range flagDocs(c) {
			flags = append(flags, "--"+f.Name)
		}
		if len(flags) > 1 {
			slices.Sort(flags)
			cases = append(cases, tc{"wgbird " + c.Name + " --", flags})
		}
	}
	args := []string{"-f", "-c", zshHarness, "harness", filepath.Dir(script)}
	for _, c := range cases {
		args = append(args, c.line)
	}
	out, errOut, err := runWithDeadline(t, 2*time.Minute, zsh, args...)
	if err != nil {
		t.Fatalf("zsh: %v\n%s\n%q", err, errOut, out)
	}
	transcripts := strings.Split(out, "<<<CASE>>>")[1:]
	if len(transcripts) != len(cases) {
		t.Fatalf("zsh printed %d transcripts for %d lines: %q", len(transcripts), len(cases), out)
	}
	for i, c := range cases {
		if diff := cmp.Diff(c.want, zshListing(transcripts[i], c.line)); diff != "" {
			t.Errorf("%q (-want +got):\n%s\ntranscript: %q", c.line, diff, transcripts[i])
		}
	}
}
