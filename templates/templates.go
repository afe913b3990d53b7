package templates

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"text/template"
)

//go:embed *.tmpl
var embedded embed.FS

// Names of the entry templates every template set defines.
const (
	Site   = "site.conf.tmpl"
	Shared = "shared.conf.tmpl"
)

// Embedded returns the built-in templates.
func Embedded() fs.FS { return embedded }

// Load parses the embedded templates, then every *.tmpl file at the top of
// override (a site repository's templates/ directory; nil for none) on top
// of them, so an override replaces the templates it redefines. The result
// is safe for concurrent execution. Errors name the file and line.
func Load(override fs.FS) (*template.Template, error) {
	t := template.New("sitesync").Option("missingkey=error").Funcs(Funcs())
	t, err := t.ParseFS(embedded, "*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("embedded templates: %w", err)
	}
	if override != nil {
		names, err := fs.Glob(override, "*.tmpl")
		if err != nil {
			return nil, fmt.Errorf("template overrides: %w", err)
		}
		for _, name := range names {
			b, err := fs.ReadFile(override, name)
			if err != nil {
				return nil, fmt.Errorf("template override %s: %w", name, err)
			}
			if _, err := t.New(name).Parse(string(b)); err != nil {
				return nil, fmt.Errorf("template override: %w", err)
			}
		}
	}
	for _, name := range []string{Site, Shared} {
		if t.Lookup(name) == nil {
			return nil, errors.New("templates: " + name + " is not defined")
		}
	}
	return t, nil
}

// Funcs returns the functions available to templates.
func Funcs() template.FuncMap {
	return template.FuncMap{
		"join": strings.Join,
	}
}
