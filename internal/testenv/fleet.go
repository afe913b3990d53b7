package testenv

import (
	"fmt"
	"strings"
)

// ProbeSite is the index of the site whose changes a benchmark makes and
// observes: a redirect site, so the change is visible in the Location
// header nginx answers with.
const ProbeSite = 2

// Fleet generates a site repository of N sites for the benchmarks: a
// quarter each of proxy (with a WebSocket location), static, redirect and
// raw sites, TLS off, with variants that change the probe site and a
// deletion of 10% of the sites.
type Fleet struct {
	// N is the number of sites.
	N int
	// Port is the HTTP port raw sites listen on (a private nginx's).
	Port int
}

// Name returns the name of site i.
func (f Fleet) Name(i int) string { return fmt.Sprintf("site%05d", i) }

// Host returns the first server name of site i.
func (f Fleet) Host(i int) string { return f.Name(i) + ".example.org" }

// RedirectTarget returns where the probe site redirects to in variant v.
func (f Fleet) RedirectTarget(v int) string {
	if v == 0 {
		return "https://" + f.Name(ProbeSite) + ".example.net"
	}
	return fmt.Sprintf("https://v%d.%s.example.net", v, f.Name(ProbeSite))
}

// Deleted reports whether site i is among the 10% of sites the deletion
// measurement removes. The probe site is never deleted.
func (f Fleet) Deleted(i int) bool { return i%10 == 0 }

// DeletedCount is the number of sites Deleted reports true for.
func (f Fleet) DeletedCount() int { return (f.N + 9) / 10 }

// SitesYAML returns sites.yaml with the probe site in variant v, without
// the deleted sites when withoutDeleted is set.
func (f Fleet) SitesYAML(v int, withoutDeleted bool) string {
	var b strings.Builder
	b.Grow(f.N * 160)
	b.WriteString("version: 1\ndefaults:\n  clientMaxBodySize: 10m\nsites:\n")
	for i := range f.N {
		if withoutDeleted && f.Deleted(i) {
			continue
		}
		name := f.Name(i)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "  - name: %s\n    serverNames: [%s.example.org, www.%s.example.org]\n    locations:\n      - path: /\n        proxyPass: http://127.0.0.1:%d\n      - path: /ws/\n        proxyPass: http://127.0.0.1:%d\n        websocket: true\n", name, name, name, 10000+i%5000, 20000+i%5000)
		case 1:
			fmt.Fprintf(&b, "  - name: %s\n    serverNames: [%s.example.org]\n    locations:\n      - path: /\n        root: /srv/%s\n", name, name, name)
		case 2:
			target := "https://" + name + ".example.net"
			if i == ProbeSite {
				target = f.RedirectTarget(v)
			}
			fmt.Fprintf(&b, "  - name: %s\n    serverNames: [%s.example.org]\n    redirect: %s\n", name, name, target)
		case 3:
			fmt.Fprintf(&b, "  - name: %s\n    raw: raw/%s.conf\n", name, name)
		}
	}
	return b.String()
}

// Files returns the whole repository in its initial state: sites.yaml in
// variant 0 and the raw files.
func (f Fleet) Files() map[string]string {
	files := map[string]string{"sites.yaml": f.SitesYAML(0, false)}
	for i := 3; i < f.N; i += 4 {
		name := f.Name(i)
		files["raw/"+name+".conf"] = fmt.Sprintf("server {\n    listen 127.0.0.1:%d;\n    server_name %s.example.org;\n    location / {\n        return 200 'raw %s';\n    }\n}\n", f.Port, name, name)
	}
	return files
}
