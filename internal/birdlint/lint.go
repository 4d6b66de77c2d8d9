package birdlint

import (
	"fmt"
	"slices"
	"strings"
)

// Service is what the lint needs of a configured service.
type Service struct {
	Name      string
	Protocols []string // the BIRD protocols it controls
}

// ExportQuery asks how many routes of Protocol that BGP protocol BGP
// exports from Table: `show route table T export B protocol P count`.
type ExportQuery struct {
	Table, BGP, Protocol string
}

// Command is the BIRD command answering q. It only reads.
func (q ExportQuery) Command() string {
	return fmt.Sprintf("show route table %s export %s protocol %s count", q.Table, q.BGP, q.Protocol)
}

// Input is everything Lint looks at.
type Input struct {
	Services []Service
	// Protocols is BIRD's `show protocols all`.
	Protocols []Detail
	// Exports holds the answers to ExportQueries; a query missing from it
	// (or failed) counts as not known.
	Exports map[ExportQuery]int
	// Conf is BIRD's parsed configuration; nil when it could not be read,
	// ConfErr says why.
	Conf    *Conf
	ConfErr error
}

// Report is what Lint found.
type Report struct {
	// Errors are configuration errors: a controlled protocol BIRD does not
	// know.
	Errors []string
	// Warnings are set-ups that defeat failover.
	Warnings []string
	// Notes are what could not be verified, and why.
	Notes []string
}

// bgpSetup is the measured cost of bringing a BGP protocol back, in the
// warning against controlling one.
const bgpSetup = "~4-7 s measured"

// ExportQueries returns the queries that tell whether BGP exports the
// controlled protocols' routes: one per controlled protocol with routes in
// a table and BGP channel on that table that is up and whose export filter
// is neither ACCEPT nor REJECT (those two need no query).
func ExportQueries(services []Service, protos []Detail) []ExportQuery {
	var out []ExportQuery
	for _, s := range services {
		for _, name := range s.Protocols {
			p, ok := find(protos, name)
			if !ok || isBGP(p) {
				continue
			}
			for _, c := range p.Channels {
				if !c.HasRoutes || c.Imported == 0 {
					continue
				}
				for _, b := range bgpChannels(protos, c.Table) {
					if b.ch.State == "UP" && !fixedFilter(b.ch.OutputFilter) {
						q := ExportQuery{Table: c.Table, BGP: b.proto.Name, Protocol: name}
						if !slices.Contains(out, q) {
							out = append(out, q)
						}
					}
				}
			}
		}
	}
	return out
}

// Lint checks every controlled protocol for set-ups that defeat failover:
// a BGP protocol controlled instead of a static one, a protocol not
// disabled in bird.conf (it announces at BIRD's start before wgbird has
// checked anything), and routes that no BGP protocol exports.
func Lint(in Input) Report {
	var r Report
	if in.Conf == nil && in.ConfErr != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("whether the controlled protocols are disabled at BIRD's start: %v (give BIRD's config with --bird-config)", in.ConfErr))
	}
	for _, s := range in.Services {
		for _, name := range s.Protocols {
			p, ok := find(in.Protocols, name)
			if !ok {
				r.Errors = append(r.Errors, fmt.Sprintf("service %s: BIRD has no protocol %q (check the protocols key and bird.conf)", s.Name, name))
				continue
			}
			if isBGP(p) {
				r.Warnings = append(r.Warnings, fmt.Sprintf("service %s controls BGP protocol %s: every return then waits for a new BGP session (%s) and every withdrawal tears the session down; control a static protocol whose routes %s exports instead", s.Name, name, bgpSetup, name))
			}
			lintBoot(&r, in.Conf, s, name)
			if !isBGP(p) {
				lintExports(&r, in, s, p)
			}
		}
	}
	return r
}

func lintBoot(r *Report, conf *Conf, s Service, name string) {
	if conf == nil {
		return
	}
	disabled, known, p := conf.BootDisabled(name)
	switch {
	case !known && p.Name == "":
		r.Notes = append(r.Notes, fmt.Sprintf("whether %s is disabled at BIRD's start: no `protocol ... %s` block found in %s", name, name, strings.Join(conf.Files, ", ")))
	case !known:
		r.Notes = append(r.Notes, fmt.Sprintf("whether %s is disabled at BIRD's start: its `disabled` (at %s:%d, or in its template) is not a plain yes/no", name, p.File, p.Line))
	case !disabled:
		r.Warnings = append(r.Warnings, fmt.Sprintf("service %s: protocol %s (%s:%d) is not `disabled` in BIRD's config: when BIRD starts or reloads its config it announces before wgbird has checked anything; add `disabled;` to it (wgbird enables it once healthy)", s.Name, name, p.File, p.Line))
	}
}

func lintExports(r *Report, in Input, s Service, p Detail) {
	if len(p.Channels) == 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("which BGP protocols export %s's routes: BIRD shows no channel for it", p.Name))
		return
	}
	for _, c := range p.Channels {
		if p.Enabled() && c.HasRoutes && c.Imported == 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("service %s: protocol %s is up but has no routes in table %s: enabling it announces nothing", s.Name, p.Name, c.Table))
			continue
		}
		bgps := bgpChannels(in.Protocols, c.Table)
		if len(bgps) == 0 {
			if pipes := pipesOn(in.Protocols); len(pipes) > 0 {
				r.Notes = append(r.Notes, fmt.Sprintf("which BGP protocols export %s's routes: no BGP protocol has a channel on table %s; pipes (%s) are not followed", p.Name, c.Table, strings.Join(pipes, ", ")))
				continue
			}
			r.Warnings = append(r.Warnings, fmt.Sprintf("service %s: no BGP protocol has a channel on table %s, so %s's routes reach no BGP neighbour: enabling and disabling it moves no traffic", s.Name, c.Table, p.Name))
			continue
		}
		var rejecting, accepting []string
		for _, b := range bgps {
			switch strings.ToUpper(b.ch.OutputFilter) {
			case "REJECT":
				rejecting = append(rejecting, b.proto.Name)
			case "ACCEPT":
				accepting = append(accepting, b.proto.Name)
			}
		}
		if len(accepting) > 0 {
			continue
		}
		if len(rejecting) == len(bgps) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("service %s: every BGP protocol on table %s (%s) has `export none`, so %s's routes reach no BGP neighbour", s.Name, c.Table, strings.Join(rejecting, ", "), p.Name))
			continue
		}
		// Export filters: only BIRD can tell, for channels that are up and
		// while the protocol has routes.
		if !c.HasRoutes {
			r.Notes = append(r.Notes, fmt.Sprintf("whether BGP's export filters pass %s's routes: it has no routes in table %s now (disabled), so BIRD cannot say", p.Name, c.Table))
			continue
		}
		var exporting, notExporting, unknown []string
		for _, b := range bgps {
			if fixedFilter(b.ch.OutputFilter) {
				continue
			}
			n, ok := in.Exports[ExportQuery{Table: c.Table, BGP: b.proto.Name, Protocol: p.Name}]
			switch {
			case b.ch.State != "UP" || !ok:
				unknown = append(unknown, b.proto.Name)
			case n > 0:
				exporting = append(exporting, b.proto.Name)
			default:
				notExporting = append(notExporting, fmt.Sprintf("%s (filter %s)", b.proto.Name, b.ch.OutputFilter))
			}
		}
		switch {
		case len(exporting) > 0:
		case len(unknown) > 0:
			r.Notes = append(r.Notes, fmt.Sprintf("whether %s's routes pass the export filter of %s: BIRD evaluates export filters only on channels that are up", p.Name, strings.Join(unknown, ", ")))
		default:
			r.Warnings = append(r.Warnings, fmt.Sprintf("service %s: no BGP protocol exports %s's routes from table %s: %s; enabling and disabling it moves no traffic", s.Name, p.Name, c.Table, strings.Join(notExporting, ", ")))
		}
	}
}

type bgpChannel struct {
	proto Detail
	ch    Channel
}

// bgpChannels returns the channels of BGP protocols on table.
func bgpChannels(protos []Detail, table string) []bgpChannel {
	var out []bgpChannel
	for _, p := range protos {
		if !isBGP(p) {
			continue
		}
		for _, c := range p.Channels {
			if c.Table == table {
				out = append(out, bgpChannel{proto: p, ch: c})
			}
		}
	}
	return out
}

func pipesOn(protos []Detail) []string {
	var out []string
	for _, p := range protos {
		if strings.EqualFold(p.Proto, "Pipe") {
			out = append(out, p.Name)
		}
	}
	return out
}

func fixedFilter(f string) bool {
	f = strings.ToUpper(f)
	return f == "ACCEPT" || f == "REJECT"
}

func isBGP(p Detail) bool { return strings.EqualFold(p.Proto, "BGP") }

func find(protos []Detail, name string) (Detail, bool) {
	for _, p := range protos {
		if p.Name == name {
			return p, true
		}
	}
	return Detail{}, false
}
