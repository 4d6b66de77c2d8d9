package cli

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/wgbird/wgbird/internal/config"
)

// WriteMan writes the wgbird(8) manual page in roff. The COMMANDS section
// comes from the same command table and flag sets as --help, so the two
// cannot drift apart. version and date (YYYY-MM-DD) go into the title line.
func WriteMan(w io.Writer, version, date string) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format+"\n", args...) }

	p(`.\" wgbird(8). Generated from the command table in internal/cli: edit that, not this file.`)
	p(`.TH WGBIRD 8 %s %s "System Administration"`, roffQuote(date), roffQuote("wgbird "+version))
	p(`.SH NAME`)
	p(`wgbird \- withdraw a WireGuard server's BGP route through BIRD when WireGuard is unhealthy`)

	p(`.SH SYNOPSIS`)
	p(`.SY wgbird`)
	p(`.I command`)
	p(`.RI [ flags ]`)
	p(`.RI [ arguments ]`)
	p(`.YS`)
	p(`.SY "wgbird help"`)
	p(`.RI [ command ]`)
	p(`.YS`)

	p(`.SH DESCRIPTION`)
	p(`.B wgbird`)
	p(`runs next to`)
	p(`.BR bird (8)`)
	p(`on WireGuard servers that announce one shared address (the VIP) over BGP.`)
	p(`It watches each configured WireGuard device, the interface that holds the VIP and`)
	p(`optional exec checks and active handshake probes, and keeps the BIRD protocols that`)
	p(`announce the VIP's prefix enabled while the service is healthy and disabled otherwise,`)
	p(`so that a server whose WireGuard is broken stops attracting clients.`)
	p(`.PP`)
	p(`.B "wgbird run"`)
	p(`is the daemon, normally started by systemd as`)
	p(`.IR wgbird.service .`)
	p(`The other commands talk to it over its control socket or check the configuration.`)
	p(`Flags are given before arguments, with one or two dashes;`)
	p(`.B "wgbird help"`)
	p(`.I command`)
	p(`prints a command's flags.`)

	p(`.SH COMMANDS`)
	for _, c := range Commands() {
		head := "wgbird " + c.Name
		flags := flagDocs(c)
		if len(flags) > 0 {
			head += " [flags]"
		}
		if c.Args != "" {
			head += " " + c.Args
		}
		p(`.SS %s`, roffQuote(head))
		p(`%s`, roffText(sentence(c.Synopsis)))
		if help := strings.TrimSpace(c.Help); help != "" {
			writeRoffParagraphs(bw, help)
		}
		if len(flags) > 0 {
			p(`.PP`)
			p(`Flags:`)
			p(`.RS`)
			for _, f := range flags {
				p(`.TP`)
				if f.Arg == "" {
					p(`.B %s`, roffQuote("--"+f.Name))
				} else {
					p(`.BI %s %s`, roffQuote("--"+f.Name), roffQuote(" "+f.Arg))
				}
				usage := f.Usage
				if f.Default != "" {
					usage += " (default: " + f.Default + ")"
				}
				p(`%s`, roffText(usage))
			}
			p(`.RE`)
		}
	}

	p(`.SH FILES`)
	files := []struct{ path, what string }{
		{DefaultConfig, "The configuration (TOML), read by run and check, and by the control commands for control.socket. Installed by the package as a conffile: an upgrade never replaces it."},
		{config.DefaultControlSocket, "The control socket (control.socket), mode 0660, group control.group."},
		{config.DefaultRuntimeDir, "Drains that survive a wgbird restart but not a reboot (control.runtime_dir)."},
		{config.DefaultStateDir, "Drains made with --persist, which survive a reboot (control.state_dir)."},
		{config.DefaultBIRDSocket, "BIRD's control socket (bird.socket)."},
		{"/lib/systemd/system/wgbird.service", "The systemd unit. It is not enabled on installation."},
	}
	for _, f := range files {
		p(`.TP`)
		p(`.I %s`, roffQuote(f.path))
		p(`%s`, roffText(f.what))
	}

	p(`.SH "EXIT STATUS"`)
	codes := []struct {
		code int
		what string
	}{
		{ExitOK, "Success."},
		{ExitFailure, "Failure, including an unhealthy service and a wait that timed out."},
		{ExitConfig, "Configuration or usage error, including a BIRD protocol that BIRD does not know. systemd does not restart the daemon after this status."},
		{ExitNoService, "No wgbird answered on the control socket."},
	}
	for _, c := range codes {
		p(`.TP`)
		p(`.B %d`, c.code)
		p(`%s`, roffText(c.what))
	}

	p(`.SH "SEE ALSO"`)
	p(`.BR bird (8),`)
	p(`.BR birdc (8),`)
	p(`.BR wg (8),`)
	p(`.BR wg-quick (8),`)
	p(`.BR systemd.service (5)`)
	return bw.Flush()
}

// sentence capitalises s and ends it with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// writeRoffParagraphs writes help text: paragraphs separated by blank
// lines, lines indented by whitespace kept as they are (examples).
func writeRoffParagraphs(w io.Writer, text string) {
	inExample := false
	blank := true // a paragraph break is due before the next text line
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			if inExample {
				fmt.Fprintln(w, ".fi\n.RE")
				inExample = false
			}
			blank = true
			continue
		}
		indented := line[0] == ' ' || line[0] == '\t'
		switch {
		case indented && !inExample:
			fmt.Fprintln(w, ".PP\n.RS 4\n.nf")
			inExample = true
		case !indented && inExample:
			fmt.Fprintln(w, ".fi\n.RE")
			inExample = false
			fmt.Fprintln(w, ".PP")
		case !indented && blank:
			fmt.Fprintln(w, ".PP")
		}
		blank = false
		if inExample {
			line = strings.TrimSpace(strings.ReplaceAll(line, "\t", "    "))
		}
		fmt.Fprintln(w, roffText(line))
	}
	if inExample {
		fmt.Fprintln(w, ".fi\n.RE")
	}
}

// roffText escapes one line of text: backslashes, a leading control
// character, and dashes that start an option ("--wait", "-h") so they
// print as the ASCII minus a reader can paste.
func roffText(s string) string {
	var b strings.Builder
	s = strings.TrimRight(s, " \t")
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		b.WriteString(`\&`)
	}
	prev := ' '
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-' && (prev == ' ' || prev == '-' || prev == '(' || prev == '"' || prev == '\'' || prev == '='):
			b.WriteString(`\-`)
		default:
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}

// roffQuote makes s one macro argument.
func roffQuote(s string) string {
	return `"` + strings.ReplaceAll(roffText(s), `"`, `\(dq`) + `"`
}
