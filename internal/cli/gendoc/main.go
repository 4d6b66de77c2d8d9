package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wgbird/wgbird/internal/cli"
)

func main() {
	dir := flag.String("dir", "dist/doc", "output `directory` for wgbird.8, wgbird.bash and _wgbird")
	version := flag.String("version", cli.Version, "version shown in the man page's title line")
	flag.Parse()
	if err := gen(*dir, *version, buildDate()); err != nil {
		fmt.Fprintf(os.Stderr, "gendoc: %v\n", err)
		os.Exit(1)
	}
}

// buildDate is SOURCE_DATE_EPOCH's day when set (reproducible builds),
// else today, in UTC.
func buildDate() string {
	t := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
			t = time.Unix(sec, 0)
		}
	}
	return t.UTC().Format("2006-01-02")
}

func gen(dir, version, date string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	outputs := []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"wgbird.8", func(b *bytes.Buffer) error { return cli.WriteMan(b, version, date) }},
		{"wgbird.bash", func(b *bytes.Buffer) error { return cli.WriteCompletion(b, "bash") }},
		{"_wgbird", func(b *bytes.Buffer) error { return cli.WriteCompletion(b, "zsh") }},
	}
	for _, o := range outputs {
		var b bytes.Buffer
		if err := o.write(&b); err != nil {
			return fmt.Errorf("generating %s: %w", o.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, o.name), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", o.name, err)
		}
	}
	return nil
}
