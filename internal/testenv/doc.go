// Package testenv is the shared test harness of sitesync.
//
// It starts real, private instances of the external programs sitesync drives
// (nginx, the pebble ACME test server, certbot and git) inside t.TempDir(),
// on free ports of 127.0.0.1, and tears them down with t.Cleanup. Nothing
// here touches the system nginx, port 80 or /etc/letsencrypt.
//
// Every helper takes a testing.TB and fails the test with t.Fatalf when
// something is missing or broken: a missing tool is a failure, never a skip.
// Run scripts/test.sh to install the tools and run the whole suite.
//
// Typical use:
//
//	ngx := testenv.StartNginx(t)
//	ca := testenv.StartPebble(t)
//	cb := testenv.NewCertbot(t, ca)
//	cb.Issue(t, "example", "example.test")
//	// render into ngx.ConfDir, run ngx.ReloadCommand, then:
//	status, body := ngx.GetEventually(t, "example.test", "/", func(s int, _ string) bool { return s == 200 })
//
// The package is only meant to be imported from _test.go files.
package testenv
