package render

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"text/template"

	"github.com/sitesync/sitesync/state"
	"github.com/sitesync/sitesync/templates"
)

// File names sitesync uses for things that are not sites. They start with
// "_", which a site or snippet name cannot, so they never collide.
const (
	// SharedFile is the shared conf.d file.
	SharedFile = "_sitesync.conf"
	// ACMESnippet is a snippet with the ACME challenge location, for raw
	// site files to include in their port-80 server.
	ACMESnippet = "_sitesync-acme.conf"
)

// SiteFile returns the conf.d file name of a site.
func SiteFile(site string) string { return site + ".conf" }

// Options are the host-specific inputs of rendering.
type Options struct {
	HTTPPort, HTTPSPort int
	// ListenAddress, when set, prefixes the ports in listen directives.
	ListenAddress string
	// Webroot is certbot's HTTP-01 webroot.
	Webroot string
	// SnippetsDir is where snippets are installed (for include directives).
	SnippetsDir string
	// LiveDir is certbot's <config_dir>/live.
	LiveDir string
	// DefaultServer renders the default ACME server in the shared file.
	DefaultServer bool
	// HTTP2Directive renders HTTP/2 as "http2 on;" (nginx >= 1.25.1)
	// rather than as a parameter of the listen directive.
	HTTP2Directive bool
	// NoTLS names letsencrypt sites to render without their HTTPS server,
	// because no usable certificate exists for them.
	NoTLS map[string]bool
}

// File is one rendered managed file.
type File struct {
	// Site is the site the file belongs to ("" for shared files and snippets).
	Site string
	// Data is the whole file, marker line included.
	Data []byte
}

// Output is every managed file of a desired state.
type Output struct {
	// Conf maps a file name in the conf.d directory to its file.
	Conf map[string]File
	// Snippets maps a file name in the snippets directory to its file.
	Snippets map[string]File
}

// SiteData is what site.conf.tmpl renders.
type SiteData struct {
	Site state.Site
	// TLS says whether to render the HTTPS server.
	TLS bool
	// HTTPListen and HTTPSListen are listen directive arguments ("80",
	// "127.0.0.1:8443").
	HTTPListen, HTTPSListen string
	// HTTP2Directive says to enable HTTP/2 with "http2 on;" rather than
	// with the listen directive's http2 parameter (Options.HTTP2Directive).
	HTTP2Directive bool
	// HTTPSRedirectBase is the scheme and authority HTTP requests are
	// redirected to ("https://$host" or "https://$host:8443").
	HTTPSRedirectBase string
	// RedirectTarget is Site.Redirect without a trailing slash, ready for
	// $request_uri to be appended.
	RedirectTarget    string
	CertFile, KeyFile string
	Webroot           string
	SnippetsDir       string
}

// SharedData is what shared.conf.tmpl renders.
type SharedData struct {
	DefaultServer bool
	HTTPListen    string
	Webroot       string
}

// Render renders every managed file of d with the templates t. It is pure
// and safe for concurrent use.
func Render(d *state.Desired, t *template.Template, o Options) (*Output, error) {
	return render(d, t, o, nil)
}

// Incremental is Render for a desired state that differs little from prev,
// which was rendered into prevOut with the same templates and options: the
// file of every site equal to its namesake in prev is taken from prevOut
// instead of being rendered again. The result is byte for byte what Render
// would return.
func Incremental(d *state.Desired, t *template.Template, o Options, prev *state.Desired, prevOut *Output) (*Output, error) {
	old := make(map[string]*state.Site, len(prev.Sites))
	for i := range prev.Sites {
		old[prev.Sites[i].Name] = &prev.Sites[i]
	}
	return render(d, t, o, func(s *state.Site) ([]byte, bool) {
		p, ok := old[s.Name]
		if !ok || !reflect.DeepEqual(*p, *s) {
			return nil, false
		}
		f, ok := prevOut.Conf[SiteFile(s.Name)]
		return f.Data, ok
	})
}

func render(d *state.Desired, t *template.Template, o Options, reuse func(*state.Site) ([]byte, bool)) (*Output, error) {
	out := &Output{
		Conf:     make(map[string]File, len(d.Sites)+1),
		Snippets: make(map[string]File, len(d.Snippets)+1),
	}
	var buf bytes.Buffer
	for i := range d.Sites {
		s := d.Sites[i]
		if reuse != nil {
			if data, ok := reuse(&s); ok {
				out.Conf[SiteFile(s.Name)] = File{Site: s.Name, Data: data}
				continue
			}
		}
		data, err := renderSite(&buf, t, s, o)
		if err != nil {
			return nil, err
		}
		out.Conf[SiteFile(s.Name)] = File{Site: s.Name, Data: data}
	}
	shared, err := renderShared(&buf, t, o)
	if err != nil {
		return nil, err
	}
	out.Conf[SharedFile] = File{Data: shared}
	for name, body := range d.Snippets {
		out.Snippets[name] = File{Data: WithMarker(KindSnippet, name, body)}
	}
	buf.Reset()
	if err := t.ExecuteTemplate(&buf, "acme", SharedData{Webroot: o.Webroot}); err != nil {
		return nil, fmt.Errorf("render %s: %w", ACMESnippet, err)
	}
	out.Snippets[ACMESnippet] = File{Data: WithMarker(KindSnippet, ACMESnippet, append(bytes.TrimLeft(buf.Bytes(), "\n"), '\n'))}
	return out, nil
}

// Site renders one site's conf.d file.
func Site(t *template.Template, s state.Site, o Options) ([]byte, error) {
	var buf bytes.Buffer
	return renderSite(&buf, t, s, o)
}

func renderSite(buf *bytes.Buffer, t *template.Template, s state.Site, o Options) ([]byte, error) {
	buf.Reset()
	if s.Raw != nil {
		return WithMarker(KindSite, s.Name, s.Raw), nil
	}
	tls := s.TLS == state.TLSLetsEncrypt && !o.NoTLS[s.Name]
	live := filepath.Join(o.LiveDir, s.Name)
	d := SiteData{
		Site:              s,
		TLS:               tls,
		HTTPListen:        listen(o.ListenAddress, o.HTTPPort),
		HTTPSListen:       listen(o.ListenAddress, o.HTTPSPort),
		HTTP2Directive:    o.HTTP2Directive,
		HTTPSRedirectBase: "https://$host",
		RedirectTarget:    strings.TrimSuffix(s.Redirect, "/"),
		CertFile:          filepath.Join(live, "fullchain.pem"),
		KeyFile:           filepath.Join(live, "privkey.pem"),
		Webroot:           o.Webroot,
		SnippetsDir:       o.SnippetsDir,
	}
	if o.HTTPSPort != 443 {
		d.HTTPSRedirectBase += ":" + strconv.Itoa(o.HTTPSPort)
	}
	if err := t.ExecuteTemplate(buf, templates.Site, d); err != nil {
		return nil, fmt.Errorf("render site %s: %w", s.Name, err)
	}
	return WithMarker(KindSite, s.Name, endWithNewline(buf.Bytes())), nil
}

func renderShared(buf *bytes.Buffer, t *template.Template, o Options) ([]byte, error) {
	buf.Reset()
	d := SharedData{DefaultServer: o.DefaultServer, HTTPListen: listen(o.ListenAddress, o.HTTPPort), Webroot: o.Webroot}
	if err := t.ExecuteTemplate(buf, templates.Shared, d); err != nil {
		return nil, fmt.Errorf("render %s: %w", SharedFile, err)
	}
	return WithMarker(KindShared, SharedFile, endWithNewline(buf.Bytes())), nil
}

func listen(addr string, port int) string {
	if addr == "" {
		return strconv.Itoa(port)
	}
	if strings.Contains(addr, ":") && !strings.HasPrefix(addr, "[") {
		addr = "[" + addr + "]"
	}
	return addr + ":" + strconv.Itoa(port)
}

func endWithNewline(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	return append(b, '\n')
}
