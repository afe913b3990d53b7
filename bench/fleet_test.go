package bench

import (
	"fmt"
	"strings"
)

// probeSite is the index of the site whose changes the benchmark makes and
// observes: a redirect site, so the change is visible in the Location
// header nginx answers with.
const probeSite = 2

// fleet generates a site repository of n sites: a quarter each of proxy
// (with a WebSocket location), static, redirect and raw sites, TLS off.
// It is reconciler/bench_test.go's generator, with the raw sites listening
// on the private nginx's port and a variant that changes one site.
type fleet struct {
	// n is the number of sites.
	n int
	// port is the HTTP port of the private nginx, which raw sites listen on.
	port int
}

// name returns the name of site i.
func (f fleet) name(i int) string { return fmt.Sprintf("site%05d", i) }

// host returns the first server name of site i.
func (f fleet) host(i int) string { return f.name(i) + ".example.org" }

// redirectTarget returns where the probe site redirects to in variant v.
func (f fleet) redirectTarget(v int) string {
	if v == 0 {
		return "https://" + f.name(probeSite) + ".example.net"
	}
	return fmt.Sprintf("https://v%d.%s.example.net", v, f.name(probeSite))
}

// deleted reports whether site i is among the 10% of sites the deletion
// measurement removes. The probe site is never deleted.
func (f fleet) deleted(i int) bool { return i%10 == 0 }

// deletedCount is the number of sites deleted reports true for.
func (f fleet) deletedCount() int { return (f.n + 9) / 10 }

// sitesYAML returns sites.yaml with the probe site in variant v, without
// the deleted sites when withoutDeleted is set.
func (f fleet) sitesYAML(v int, withoutDeleted bool) string {
	var b strings.Builder
	b.Grow(f.n * 160)
	b.WriteString("version: 1\ndefaults:\n  clientMaxBodySize: 10m\nsites:\n")
	for i := range f.n {
		if withoutDeleted && f.deleted(i) {
			continue
		}
		name := f.name(i)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "  - name: %s\n    serverNames: [%s.example.org, www.%s.example.org]\n    locations:\n      - path: /\n        proxyPass: http://127.0.0.1:%d\n      - path: /ws/\n        proxyPass: http://127.0.0.1:%d\n        websocket: true\n", name, name, name, 10000+i%5000, 20000+i%5000)
		case 1:
			fmt.Fprintf(&b, "  - name: %s\n    serverNames: [%s.example.org]\n    locations:\n      - path: /\n        root: /srv/%s\n", name, name, name)
		case 2:
			target := "https://" + name + ".example.net"
			if i == probeSite {
				target = f.redirectTarget(v)
			}
			fmt.Fprintf(&b, "  - name: %s\n    serverNames: [%s.example.org]\n    redirect: %s\n", name, name, target)
		case 3:
			fmt.Fprintf(&b, "  - name: %s\n    raw: raw/%s.conf\n", name, name)
		}
	}
	return b.String()
}

// files returns the whole repository in its initial state: sites.yaml in
// variant 0 and the raw files.
func (f fleet) files() map[string]string {
	files := map[string]string{"sites.yaml": f.sitesYAML(0, false)}
	for i := 3; i < f.n; i += 4 {
		name := f.name(i)
		files["raw/"+name+".conf"] = fmt.Sprintf("server {\n    listen 127.0.0.1:%d;\n    server_name %s.example.org;\n    location / {\n        return 200 'raw %s';\n    }\n}\n", f.port, name, name)
	}
	return files
}
