package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sitesync.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultIsTheQuickstart(t *testing.T) {
	c, err := Default(nil)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if c.Source.URL != filepath.Join(wd, "examples/site-repo") {
		t.Errorf("source.url = %q, want it resolved against the working directory", c.Source.URL)
	}
	if len(c.Nginx.TestCommand) != 0 || len(c.Nginx.ReloadCommand) != 0 || len(c.Certbot.Command) != 0 {
		t.Errorf("quickstart must not run nginx or certbot: %+v %+v", c.Nginx, c.Certbot.Command)
	}
	if c.Broker.URL != "" || c.Database.URL != "" {
		t.Error("quickstart must not need a broker or a database")
	}
	if c.Reconcile.Interval.Duration != 5*time.Minute || c.Certbot.RenewBefore.Duration != 30*24*time.Hour {
		t.Errorf("built-in defaults lost: interval %v renew_before %v", c.Reconcile.Interval, c.Certbot.RenewBefore)
	}
}

func TestLoadFileAndBuiltins(t *testing.T) {
	path := writeConfig(t, `
[source]
url = "https://example.org/sites.git"
token_file = "secrets/token"

[nginx]
test_command = ["sudo", "nginx", "-t"]
http_port = 8080

[certbot]
renew_before = "45d"

[reconcile]
interval = "90s"
include = ["shop-*"]
`)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	if c.Source.URL != "https://example.org/sites.git" || c.Source.TokenFile != filepath.Join(dir, "secrets/token") {
		t.Errorf("source = %+v", c.Source)
	}
	if !reflect.DeepEqual(c.Nginx.TestCommand, []string{"sudo", "nginx", "-t"}) || c.Nginx.HTTPPort != 8080 || c.Nginx.HTTPSPort != 443 {
		t.Errorf("nginx = %+v", c.Nginx)
	}
	if !reflect.DeepEqual(c.Nginx.ReloadCommand, []string{"sudo", "systemctl", "reload", "nginx"}) || c.Nginx.ConfDir != "/etc/nginx/conf.d" {
		t.Errorf("built-in nginx defaults lost: %+v", c.Nginx)
	}
	if c.Certbot.RenewBefore.Duration != 45*24*time.Hour || c.Reconcile.Interval.Duration != 90*time.Second {
		t.Errorf("durations: %v %v", c.Certbot.RenewBefore, c.Reconcile.Interval)
	}
	if c.Origin != path {
		t.Errorf("origin = %q", c.Origin)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	path := writeConfig(t, "[source]\nurl = \"/srv/sites\"\n")
	c, err := Load(path, []string{
		"SITESYNC_NGINX_CONF_DIR=/tmp/confd",
		`SITESYNC_NGINX_RELOAD_COMMAND=["nginx", "-s", "reload"]`,
		"SITESYNC_NGINX_HTTPS_PORT=8443",
		"SITESYNC_RECONCILE_ALLOW_EMPTY=true",
		"SITESYNC_CERTBOT_RENEW_BEFORE=10d",
		"SITESYNC_CONFIG=/ignored",
		"PATH=/usr/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Nginx.ConfDir != "/tmp/confd" || c.Nginx.HTTPSPort != 8443 || !c.Reconcile.AllowEmpty ||
		!reflect.DeepEqual(c.Nginx.ReloadCommand, []string{"nginx", "-s", "reload"}) || c.Certbot.RenewBefore.Duration != 240*time.Hour {
		t.Errorf("overrides not applied: %+v %+v", c.Nginx, c.Reconcile)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		env        []string
		want       string
	}{
		{"unknown key", "[nginx]\nconf_dirr = \"/x\"\n", nil, "unknown key nginx.conf_dirr"},
		{"unknown section", "[ngnix]\nconf_dir = \"/x\"\n", nil, "unknown key ngnix"},
		{"wrong type", "[nginx]\nhttp_port = \"eighty\"\n", nil, "http_port"},
		{"list expected", "[nginx]\ntest_command = \"nginx -t\"\n", nil, "test_command"},
		{"bad duration", "[reconcile]\ninterval = \"soon\"\n", nil, "invalid duration \"soon\""},
		{"bad port", "[nginx]\nhttp_port = 70000\n", nil, "nginx.http_port: 70000 is not a port"},
		{"syntax", "[nginx\n", nil, "sitesync.toml"},
		{"unknown env", "", []string{"SITESYNC_NGINX_CONFDIR=/x"}, "unknown variable SITESYNC_NGINX_CONFDIR"},
		{"bad env int", "", []string{"SITESYNC_NGINX_HTTP_PORT=eighty"}, "SITESYNC_NGINX_HTTP_PORT: \"eighty\" is not an integer"},
		{"bad env list", "", []string{"SITESYNC_NGINX_TEST_COMMAND=nginx -t"}, "SITESYNC_NGINX_TEST_COMMAND"},
		{"bad certbot env", "[certbot]\nenv = [\"NOVALUE\"]\n", nil, "certbot.env: \"NOVALUE\" is not KEY=VALUE"},
		{"short retention", "[database]\nretention = \"10m\"\n", nil, "database.retention: 10m0s is less than an hour"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := "[source]\nurl = \"/srv/sites\"\n" + tc.text
			if strings.HasPrefix(tc.text, "[source]") {
				text = tc.text
			}
			_, err := Load(writeConfig(t, text), tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestEveryKeyIsDocumentedInTheExample(t *testing.T) {
	example, err := os.ReadFile("../examples/sitesync.toml")
	if err != nil {
		t.Fatal(err)
	}
	// The example must load as it is, and name every key.
	if _, err := Load("../examples/sitesync.toml", nil); err != nil {
		t.Fatalf("examples/sitesync.toml does not load: %v", err)
	}
	root := reflect.TypeOf(Config{})
	for i := range root.NumField() {
		sec := tomlName(root.Field(i))
		if sec == "" {
			continue
		}
		if !strings.Contains(string(example), "["+sec+"]") {
			t.Errorf("section [%s] missing from examples/sitesync.toml", sec)
		}
		st := root.Field(i).Type
		for j := range st.NumField() {
			key := tomlName(st.Field(j))
			if !strings.Contains(string(example), "\n"+key+" = ") {
				t.Errorf("key %s.%s missing from examples/sitesync.toml", sec, key)
			}
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 720 * time.Hour, "0d": 0, "90s": 90 * time.Second, "1h30m": 90 * time.Minute} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "1.5d", "30 d", "x"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestIsLocalPath(t *testing.T) {
	for u, want := range map[string]bool{
		"/srv/sites": true, "./sites": true, "examples/site-repo": true,
		"https://github.com/a/b.git": false, "git@github.com:a/b.git": false, "ssh://git@h/a": false, "file:///srv/x": false,
	} {
		if got := isLocalPath(u); got != want {
			t.Errorf("isLocalPath(%q) = %v", u, got)
		}
	}
}
