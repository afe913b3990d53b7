package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "SITESYNC_"

// envIgnored are SITESYNC_ variables that are not configuration keys.
var envIgnored = map[string]bool{
	"SITESYNC_CONFIG": true, // the config file path, read by the CLI
}

// applyEnv overrides keys from SITESYNC_<SECTION>_<KEY> variables. An
// unknown SITESYNC_ variable is an error, so a typo never goes unnoticed.
func applyEnv(c *Config, env []string) error {
	targets := map[string]reflect.Value{}
	root := reflect.ValueOf(c).Elem()
	for i := range root.NumField() {
		sec := root.Type().Field(i)
		secName := tomlName(sec)
		if secName == "" {
			continue
		}
		sv := root.Field(i)
		for j := range sv.NumField() {
			key := tomlName(sv.Type().Field(j))
			if key == "" {
				continue
			}
			targets[EnvPrefix+strings.ToUpper(secName+"_"+key)] = sv.Field(j)
		}
	}
	var unknown []string
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || envIgnored[name] || strings.HasPrefix(name, EnvPrefix+"TEST_") {
			continue
		}
		f, ok := targets[name]
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		if err := setFromEnv(f, val); err != nil {
			return fmt.Errorf("environment %s: %w", name, err)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("environment: unknown variable %s", strings.Join(unknown, ", "))
	}
	return nil
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func setFromEnv(f reflect.Value, val string) error {
	switch p := f.Addr().Interface().(type) {
	case *string:
		*p = val
	case *int:
		n, err := strconv.Atoi(val)
		if err != nil {
			return fmt.Errorf("%q is not an integer", val)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", val)
		}
		*p = b
	case *Duration:
		return p.UnmarshalText([]byte(val))
	case *[]string:
		var holder struct{ V []string }
		if _, err := toml.Decode("V = "+val, &holder); err != nil {
			return fmt.Errorf("%q is not a TOML array of strings, e.g. [\"nginx\", \"-t\"]", val)
		}
		*p = holder.V
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}
