package config

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

//go:embed default.toml
var defaultTOML string

// Config is sitesync's whole configuration. The zero value is not useful;
// obtain one from Load or Default.
type Config struct {
	Source    Source    `toml:"source"`
	Nginx     Nginx     `toml:"nginx"`
	Certbot   Certbot   `toml:"certbot"`
	Reconcile Reconcile `toml:"reconcile"`
	Webhook   Webhook   `toml:"webhook"`
	Broker    Broker    `toml:"broker"`
	Database  Database  `toml:"database"`
	Metrics   Metrics   `toml:"metrics"`
	GitHub    GitHub    `toml:"github"`

	// Origin says where the configuration came from: a file path, or
	// "embedded default". It is not a TOML key.
	Origin string `toml:"-"`
}

// Source says where the site repository lives.
type Source struct {
	// URL is a local path, a file://, https:// or ssh URL. A local path that
	// is not a git repository is read as a plain directory.
	URL string `toml:"url"`
	// Branch is the branch to follow.
	Branch string `toml:"branch"`
	// File is the desired-state file's path inside the repository.
	File string `toml:"file"`
	// TokenFile holds an HTTPS token (mode 0600 or stricter).
	TokenFile string `toml:"token_file"`
	// SSHKeyFile holds an SSH deploy key (mode 0600 or stricter).
	SSHKeyFile string `toml:"ssh_key_file"`
}

// Nginx says where managed files go and how nginx is tested and reloaded.
type Nginx struct {
	ConfDir     string `toml:"conf_dir"`
	SnippetsDir string `toml:"snippets_dir"`
	// TestCommand checks the whole configuration (argv; empty skips the test).
	TestCommand []string `toml:"test_command"`
	// ReloadCommand reloads nginx (argv; empty skips the reload).
	ReloadCommand []string `toml:"reload_command"`
	HTTPPort      int      `toml:"http_port"`
	HTTPSPort     int      `toml:"https_port"`
	// ListenAddress, when set, is put in front of the ports in every
	// rendered listen directive (for example "127.0.0.1").
	ListenAddress string `toml:"listen_address"`
	// DefaultServer renders the managed default server on the HTTP port,
	// which answers ACME HTTP-01 challenges for names no site serves yet.
	DefaultServer bool `toml:"default_server"`
	// HTTP2Directive renders HTTP/2 as the "http2 on;" directive, which
	// nginx 1.25.1 introduced and which newer versions want instead of the
	// deprecated "listen ... http2" parameter. nginx before 1.25.1 (Debian
	// 12 ships 1.22) rejects the directive, so it is off by default.
	HTTP2Directive bool `toml:"http2_directive"`
	// CommandTimeout bounds the test and reload commands.
	CommandTimeout Duration `toml:"command_timeout"`
}

// Certbot says how certificates are obtained.
type Certbot struct {
	// Command is certbot's argv prefix (empty disables certificate
	// management: TLS sites are served over HTTP until a certificate exists).
	Command   []string `toml:"command"`
	ConfigDir string   `toml:"config_dir"`
	WorkDir   string   `toml:"work_dir"`
	LogsDir   string   `toml:"logs_dir"`
	// Server is the ACME directory URL ("" = certbot's default, Let's Encrypt).
	Server string `toml:"server"`
	// Email registers the ACME account ("" = --register-unsafely-without-email).
	Email string `toml:"email"`
	// Webroot is where certbot writes HTTP-01 challenge files.
	Webroot string `toml:"webroot"`
	// RenewBefore renews a certificate this long before it expires.
	RenewBefore Duration `toml:"renew_before"`
	// Env is extra environment for certbot, as KEY=VALUE entries.
	Env []string `toml:"env"`
	// Timeout bounds one certbot run.
	Timeout Duration `toml:"timeout"`
}

// Reconcile tunes the reconcile loop.
type Reconcile struct {
	// StateDir holds the checkout, lock, journal and local database.
	StateDir string `toml:"state_dir"`
	// Interval is the resync period.
	Interval Duration `toml:"interval"`
	// Include and Exclude are path.Match globs on site names.
	Include []string `toml:"include"`
	Exclude []string `toml:"exclude"`
	// AllowEmpty permits a desired state with zero sites to prune every
	// managed site.
	AllowEmpty bool `toml:"allow_empty"`
}

// Webhook configures the GitHub webhook receiver.
type Webhook struct {
	Listen     string `toml:"listen"`
	Path       string `toml:"path"`
	SecretFile string `toml:"secret_file"`
	// Repository is the GitHub "owner/name" whose pushes count.
	Repository string `toml:"repository"`
	// InsecureNoSecret lets the receiver start without a secret (development only).
	InsecureNoSecret bool `toml:"insecure_no_secret"`
	// AllowedCIDRs restricts the source addresses (empty allows all).
	AllowedCIDRs []string `toml:"allowed_cidrs"`
	// TrustedProxyHops is how many X-Forwarded-For hops to trust.
	TrustedProxyHops int `toml:"trusted_proxy_hops"`
}

// Broker configures RabbitMQ.
type Broker struct {
	// URL is an amqp:// URL ("" = in-process channel).
	URL      string `toml:"url"`
	Exchange string `toml:"exchange"`
	// Queue is this host's queue ("" = sitesync.<hostname>).
	Queue string `toml:"queue"`
}

// Database configures persistence.
type Database struct {
	// URL is a PostgreSQL URL ("" = SQLite in the state directory).
	URL string `toml:"url"`
	// Retention is how long deliveries, sent outbox messages and pass
	// records are kept; 0 keeps them forever.
	Retention Duration `toml:"retention"`
}

// Metrics configures the metrics, health and status listener.
type Metrics struct {
	Listen string `toml:"listen"`
}

// GitHub configures commit status reporting.
type GitHub struct {
	// TokenFile enables commit statuses when set.
	TokenFile string `toml:"token_file"`
	APIURL    string `toml:"api_url"`
	Context   string `toml:"context"`
}

// Duration is a time.Duration that also accepts a day suffix ("30d").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ParseDuration parses a Go duration, or a whole number of days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && fmt.Sprint(n) == days && n >= 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 90s, 5m, 720h or 30d)", s)
	}
	return d, nil
}

// builtin returns the defaults every configuration starts from; a file or
// the embedded default then overrides them.
func builtin() Config {
	return Config{
		Source: Source{Branch: "main", File: "sites.yaml"},
		Nginx: Nginx{
			ConfDir:        "/etc/nginx/conf.d",
			SnippetsDir:    "/etc/nginx/snippets",
			TestCommand:    []string{"nginx", "-t"},
			ReloadCommand:  []string{"sudo", "systemctl", "reload", "nginx"},
			HTTPPort:       80,
			HTTPSPort:      443,
			DefaultServer:  true,
			CommandTimeout: Duration{time.Minute},
		},
		Certbot: Certbot{
			Command:     []string{"sudo", "certbot"},
			ConfigDir:   "/etc/letsencrypt",
			WorkDir:     "/var/lib/letsencrypt",
			LogsDir:     "/var/log/letsencrypt",
			Webroot:     "/var/lib/sitesync/acme",
			RenewBefore: Duration{30 * 24 * time.Hour},
			Timeout:     Duration{5 * time.Minute},
		},
		Reconcile: Reconcile{StateDir: "/var/lib/sitesync", Interval: Duration{5 * time.Minute}},
		Webhook:   Webhook{Listen: "127.0.0.1:3400", Path: "/github-webhook"},
		Broker:    Broker{Exchange: "sitesync"},
		Database:  Database{Retention: Duration{90 * 24 * time.Hour}},
		Metrics:   Metrics{Listen: "127.0.0.1:9400"},
		GitHub:    GitHub{APIURL: "https://api.github.com", Context: "sitesync"},
	}
}

// Default returns the embedded quickstart configuration with environment
// overrides from env (os.Environ() form) applied. Relative paths are
// resolved against the working directory.
func Default(env []string) (*Config, error) {
	return decode("embedded default", defaultTOML, "", env)
}

// Load reads the TOML file at path and applies environment overrides from
// env (os.Environ() form). Relative paths resolve against the file's
// directory.
func Load(path string, env []string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return decode(path, string(b), filepath.Dir(abs), env)
}

func decode(origin, text, base string, env []string) (*Config, error) {
	c := builtin()
	md, err := toml.Decode(text, &c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", origin, err)
	}
	if un := md.Undecoded(); len(un) > 0 {
		keys := make([]string, len(un))
		for i, k := range un {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown key %s", origin, strings.Join(keys, ", "))
	}
	if err := applyEnv(&c, env); err != nil {
		return nil, err
	}
	c.Origin = origin
	if err := c.resolvePaths(base); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", origin, err)
	}
	return &c, nil
}

// resolvePaths makes every path key absolute against base ("" = working
// directory).
func (c *Config) resolvePaths(base string) error {
	if base == "" {
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("resolve paths: %w", err)
		}
		base = wd
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	for _, p := range []*string{
		&c.Source.TokenFile, &c.Source.SSHKeyFile,
		&c.Nginx.ConfDir, &c.Nginx.SnippetsDir,
		&c.Certbot.ConfigDir, &c.Certbot.WorkDir, &c.Certbot.LogsDir, &c.Certbot.Webroot,
		&c.Reconcile.StateDir, &c.Webhook.SecretFile, &c.GitHub.TokenFile,
	} {
		abs(p)
	}
	if isLocalPath(c.Source.URL) {
		abs(&c.Source.URL)
	}
	return nil
}

// isLocalPath reports whether a source URL is a filesystem path rather
// than a URL or scp-like SSH address.
func isLocalPath(u string) bool {
	if u == "" || strings.Contains(u, "://") {
		return false
	}
	if filepath.IsAbs(u) || strings.HasPrefix(u, ".") {
		return true
	}
	// scp-like "git@host:org/repo.git": a colon before the first slash.
	colon, slash := strings.Index(u, ":"), strings.Index(u, "/")
	return colon < 0 || (slash >= 0 && slash < colon)
}

func (c *Config) validate() error {
	var errs []string
	need := func(v, key string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, key+" must be set")
		}
	}
	need(c.Source.URL, "source.url")
	need(c.Source.Branch, "source.branch")
	need(c.Source.File, "source.file")
	need(c.Nginx.ConfDir, "nginx.conf_dir")
	need(c.Nginx.SnippetsDir, "nginx.snippets_dir")
	need(c.Reconcile.StateDir, "reconcile.state_dir")
	if len(c.Certbot.Command) > 0 {
		need(c.Certbot.ConfigDir, "certbot.config_dir")
		need(c.Certbot.Webroot, "certbot.webroot")
	}
	for _, p := range []struct {
		v   int
		key string
	}{{c.Nginx.HTTPPort, "nginx.http_port"}, {c.Nginx.HTTPSPort, "nginx.https_port"}} {
		if p.v < 1 || p.v > 65535 {
			errs = append(errs, fmt.Sprintf("%s: %d is not a port (1-65535)", p.key, p.v))
		}
	}
	if c.Reconcile.Interval.Duration <= 0 {
		errs = append(errs, "reconcile.interval must be positive")
	}
	if c.Certbot.RenewBefore.Duration < 0 {
		errs = append(errs, "certbot.renew_before must not be negative")
	}
	if r := c.Database.Retention.Duration; r != 0 && r < time.Hour {
		errs = append(errs, fmt.Sprintf("database.retention: %s is less than an hour; use 0 to keep history forever", r))
	}
	for _, kv := range c.Certbot.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Sprintf("certbot.env: %q is not KEY=VALUE", kv))
		}
	}
	if c.Webhook.Path == "" || c.Webhook.Path[0] != '/' {
		errs = append(errs, "webhook.path must start with /")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
