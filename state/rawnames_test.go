package state

import (
	"reflect"
	"testing"
)

func TestServerNames(t *testing.T) {
	tests := []struct {
		name         string
		raw          string
		names, other []string
	}{
		{"simple", "server { server_name a.example.org b.example.org; }", []string{"a.example.org", "b.example.org"}, nil},
		{"no server_name", "server { listen 80; }", nil, nil},
		{"empty file", "", nil, nil},
		{"comments",
			"# server_name fake.example.org;\nserver {\n  # server_name also.fake;\n  server_name real.example.org; # server_name nope;\n}\n",
			[]string{"real.example.org"}, nil},
		{"hash inside word is not a comment", "server { server_name a#b; }", nil, []string{"a#b"}},
		{"quotes", `server { server_name "quoted.example.org" 'single.example.org'; }`,
			[]string{"quoted.example.org", "single.example.org"}, nil},
		{"quoted special characters", `server { server_name "a;b" 'c{d}' "e f"; }`, nil, []string{"a;b", "c{d}", "e f"}},
		{"escaped quote", `server { server_name "a\"b" x.org; }`, []string{"x.org"}, []string{`a"b`}},
		{"escaped semicolon", `server { server_name a\;b; }`, nil, []string{`a\;b`}},
		{"multiple server blocks",
			"server {\n  server_name one.example.org;\n}\nserver {\n  server_name two.example.org;\n}\n",
			[]string{"one.example.org", "two.example.org"}, nil},
		{"multiple directives and duplicates",
			"server {\n  server_name a.org b.org;\n  server_name b.org c.org;\n  server_name A.ORG;\n}\n",
			[]string{"a.org", "b.org", "c.org"}, nil},
		{"server_name_in_redirect is not server_name",
			"server {\n  server_name_in_redirect on;\n  server_names_hash_bucket_size 64;\n  server_name real.org;\n}\n",
			[]string{"real.org"}, nil},
		{"server_name as an argument", "server { return 200 server_name; add_header server_name x.org; }", nil, nil},
		{"wildcards and regexes",
			`server { server_name *.a.org www.a.* .b.org ~^(?<sub>.+)\.c\.org$ "~^x{2}\.d$" _ "" $hostname exact.org; }`,
			[]string{"exact.org"},
			[]string{"*.a.org", "www.a.*", ".b.org", `~^(?<sub>.+)\.c\.org$`, `~^x{2}\.d$`, "_", "", "$hostname"}},
		{"nested blocks and variables",
			"http {\n  map $host $x { default 1; }\n  server {\n    set $a \"${host}x\";\n    location / { if ($x) { return 404; } }\n    server_name n.org;\n  }\n}\n",
			[]string{"n.org"}, nil},
		{"brace inside a word", "server { server_name a}b; }", nil, []string{"a}b"}},
		{"crlf and tabs", "server {\r\n\tserver_name\ta.org\r\n\t\tb.org;\r\n}\r\n", []string{"a.org", "b.org"}, nil},
		{"quoted string spanning lines", "server { server_name \"a\nb\"; server_name c.org; }", []string{"c.org"}, []string{"a\nb"}},
		{"closing quote before paren", `server { if ("$x") { return 404; } server_name p.org; }`, []string{"p.org"}, nil},
		{"escaped newline escape", `server { server_name a\nb.org; }`, nil, []string{"a\nb.org"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, other, err := ServerNames([]byte(tt.raw))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !reflect.DeepEqual(names, tt.names) || !reflect.DeepEqual(other, tt.other) {
				t.Errorf("got names %q other %q\nwant names %q other %q", names, other, tt.names, tt.other)
			}
		})
	}
}

func TestServerNamesErrors(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"unterminated double quote", "server {\n  server_name \"a.org;\n}\n", `line 2: unterminated quoted string (missing '"')`},
		{"unterminated single quote", "server {\n\n  server_name 'a.org;\n}\n", `line 3: unterminated quoted string (missing '\'')`},
		{"unterminated brace", "server {\n  server_name a.org;\n  location / {\n  }\n", `line 1: block "server" is never closed (missing "}")`},
		{"extra closing brace", "server {\n}\n}\n", `line 3: unexpected "}"`},
		{"missing semicolon at eof", "server_name a.org", `line 1: unexpected end of file, expecting ";" or "}"`},
		{"missing semicolon before brace", "server {\n  server_name a.org\n}\n", `line 3: unexpected "}" (missing ";"?)`},
		{"empty statement", "server { ; }", `line 1: unexpected ';'`},
		{"block without name", "{ }", `line 1: unexpected '{'`},
		{"junk after quote", "server_name \"a\"b;", `line 1: unexpected 'b' after quoted string`},
		{"escape at eof", "server_name a\\", `line 1: unexpected end of file, expecting ";" or "}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, other, err := ServerNames([]byte(tt.raw))
			if err == nil {
				t.Fatalf("no error; names %q other %q", names, other)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
			if e, ok := err.(*Error); !ok || e.Line == 0 || e.File != "" {
				t.Errorf("error is %#v, want *Error with a line", err)
			}
		})
	}
}
