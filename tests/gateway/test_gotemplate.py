"""The sandboxed Go text/template subset tool templates are written in: syntax, printing, functions, limits."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import pytest

from gateway.gotemplate import (SliceSpent, Template, TemplateError, TemplateRenderError, TemplateSyntaxError,
                                compile_template, render)


def r(src: str, data=None, **limits) -> str:
    return render(src, {} if data is None else data, **limits)


def syntax_error(src: str) -> TemplateSyntaxError:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_template(src)
    return info.value


def render_error(src: str, data=None, **limits) -> TemplateRenderError:
    with pytest.raises(TemplateRenderError) as info:
        r(src, data, **limits)
    return info.value


# ---------------------------------------------------------------- text, actions, trimming, comments

def test_plain_text_and_simple_fields():
    assert r("hello") == "hello"
    assert r("") == ""
    assert r("Pet {{.id}}: {{.name}} ({{.status}})", {"id": 7, "name": "Rex", "status": "sold"}) == "Pet 7: Rex (sold)"


def test_trim_markers_remove_spaces_and_newlines():
    assert r("a  \n {{- .b -}} \n  c", {"b": "B"}) == "aBc"
    assert r("x\n  {{- 1 }}\n") == "x1\n"
    assert r("{{ 1 -}}\n\n  2") == "12"
    # "{{-3}}" is the number -3, not a trim marker.
    assert r("a {{-3}} b") == "a -3 b"


def test_comments():
    assert r("a{{/* a comment */}}b") == "ab"
    assert r("a {{- /* spans\nlines */ -}} b") == "ab"
    assert r("{{/* }} inside */}}x") == "x"


def test_delimiters_inside_strings_do_not_end_an_action():
    assert r('{{ "}}" }}') == "}}"
    assert r("{{ `{{x}}` }}") == "{{x}}"


def test_newlines_inside_an_action():
    assert r("{{ printf\n  \"%v-%v\"\n  .a\n  .b }}", {"a": 1, "b": 2}) == "1-2"


# ---------------------------------------------------------------- fields, variables, literals

def test_field_chains_dot_and_root():
    data = {"a": {"b": {"c": "deep"}}, "x": 1}
    assert r("{{.a.b.c}}", data) == "deep"
    assert r("{{with .a}}{{.b.c}}/{{$.x}}{{end}}", data) == "deep/1"
    assert r("{{ $.a.b.c }}", data) == "deep"
    assert r("{{.}}", "just a string") == "just a string"


def test_missing_keys_are_nil_and_print_empty():
    assert r("[{{.missing}}]") == "[]"
    assert r("[{{.missing.deeper.still}}]") == "[]"
    assert r("[{{.a.b}}]", {"a": None}) == "[]"
    assert r("{{ if .missing }}yes{{ else }}no{{ end }}") == "no"


def test_field_of_non_map_is_a_render_error_naming_the_line():
    err = render_error("one\ntwo\n{{ .name.first }}", {"name": "Ada"})
    assert err.line == 3
    assert str(err) == ("line 3: can't evaluate field first in type string: only maps (JSON objects) have fields")


def test_numeric_field_indexes_a_list_as_in_higress():
    data = {"items": [{"name": "a"}, {"name": "b"}]}
    assert r("{{ .items.1.name }}", data) == "b"
    assert r("[{{ .items.5.name }}]", data) == "[]"
    assert r("{{ $x := .items }}{{ $x.0.name }}", data) == "a"


def test_variables_declare_assign_and_scope():
    assert r("{{ $x := 1 }}{{ $x }}") == "1"
    assert r("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}") == "2"
    # Assignment reaches the outer variable; a declaration inside a block shadows it until {{end}}.
    assert r("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}") == "2"
    assert r("{{ $x := 1 }}{{ if true }}{{ $x := 3 }}{{ $x }}{{ end }}{{ $x }}") == "31"
    assert r("{{ $p := .pet }}{{ $p.name }}", {"pet": {"name": "Rex"}}) == "Rex"
    # A variable declared in an if's pipeline is visible in the body.
    assert r("{{ if $n := .n }}n={{ $n }}{{ end }}", {"n": 5}) == "n=5"


def test_undefined_variable_is_a_syntax_error():
    err = syntax_error("ok\n{{ $nope }}")
    assert (err.line, err.message) == (2, "undefined variable '$nope'")
    assert syntax_error("{{ $y = 1 }}").message == "undefined variable '$y'"
    # Scope ends at {{end}}.
    assert syntax_error("{{ if true }}{{ $z := 1 }}{{ end }}{{ $z }}").message == "undefined variable '$z'"


def test_literals():
    assert r('{{ "a\\tb\\u00e9\\x41\\101" }}') == "a\tbéAA"
    assert r("{{ `raw\\n` }}") == "raw\\n"
    assert r("{{ 42 }} {{ -7 }} {{ 1.5 }} {{ 1.0 }} {{ 1e3 }} {{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 1_000 }}") == \
        "42 -7 1.5 1 1000 31 15 15 1000"
    assert r("{{ 'a' }} {{ '\\n' }}") == "97 10"
    assert r("{{ true }} {{ false }}") == "true false"


# ---------------------------------------------------------------- pipelines

def test_pipelines_parentheses_and_function_arguments():
    assert r("{{ .name | upper }}", {"name": "rex"}) == "REX"
    assert r('{{ "a" | printf "%s-%s" "b" }}') == "b-a"
    assert r("{{ add 1 2 | add 3 | printf \"%03d\" }}") == "006"
    assert r("{{ len (list 1 2 3) }}") == "3"
    assert r('{{ (dict "a" (dict "b" 5)).a.b }}') == "5"
    assert r("{{ upper (toString 5) }}") == "5"
    # A function name as an argument is called with no arguments.
    assert r("{{ len list }}") == "0"


# ---------------------------------------------------------------- control structures

def test_if_else_if_else():
    src = "{{ if eq .n 1 }}one{{ else if eq .n 2 }}two{{ else if gt .n 2 }}many{{ else }}none{{ end }}"
    assert [r(src, {"n": n}) for n in (1, 2, 5, 0)] == ["one", "two", "many", "none"]


@pytest.mark.parametrize("value, truthy", [
    (False, False), (0, False), (0.0, False), (None, False), ("", False), ([], False), ({}, False),
    (True, True), (1, True), (-1.5, True), ("0", True), ("false", True), ([0], True), ({"a": None}, True),
])
def test_go_truthiness(value, truthy):
    assert r("{{ if .v }}T{{ else }}F{{ end }}", {"v": value}) == ("T" if truthy else "F")


def test_with_else_with_else():
    src = "{{ with .a }}a={{ . }}{{ else with .b }}b={{ . }}{{ else }}neither{{ end }}"
    assert r(src, {"a": 1, "b": 2}) == "a=1"
    assert r(src, {"a": 0, "b": 2}) == "b=2"
    assert r(src, {}) == "neither"


def test_range_forms():
    data = {"items": ["x", "y", "z"]}
    assert r("{{ range .items }}[{{ . }}]{{ end }}", data) == "[x][y][z]"
    assert r("{{ range $i, $e := .items }}{{ $i }}={{ $e }} {{ end }}", data) == "0=x 1=y 2=z "
    assert r("{{ range $e := .items }}{{ $e }}{{ end }}", data) == "xyz"
    assert r("{{ $i := 9 }}{{ $e := 9 }}{{ range $i, $e = .items }}{{ end }}{{ $i }}{{ $e }}", data) == "2z"
    assert r("{{ range .none }}x{{ else }}empty{{ end }}") == "empty"
    assert r("{{ range .items }}x{{ else }}empty{{ end }}", {"items": []}) == "empty"


def test_range_over_map_uses_sorted_keys():
    data = {"m": {"b": 2, "a": 1, "c": 3}}
    assert r("{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}", data) == "a=1;b=2;c=3;"
    assert r("{{ range .m }}{{ . }}{{ end }}", data) == "123"


def test_range_over_integer_and_string():
    assert r("{{ range 3 }}{{ . }}{{ end }}") == "012"
    assert r("{{ range $i := 3 }}{{ $i }}{{ end }}") == "012"
    assert r("{{ range 0 }}x{{ else }}none{{ end }}") == "none"
    assert r('{{ range "ab" }}{{ . }}-{{ end }}') == "a-b-"
    err = render_error("{{ range $i, $e := 3 }}{{ end }}")
    assert err.message == "can't use 3 to iterate over more than one variable"
    assert render_error("{{ range true }}{{ end }}").message == "range can't iterate over true"


def test_break_and_continue():
    data = {"n": [1, 2, 3, 4]}
    assert r("{{ range .n }}{{ if eq . 3 }}{{ break }}{{ end }}{{ . }}{{ end }}", data) == "12"
    assert r("{{ range .n }}{{ if eq . 3 }}{{ continue }}{{ end }}{{ . }}{{ end }}", data) == "124"
    # break leaves only the innermost range
    assert r("{{ range 2 }}{{ range 5 }}{{ if eq . 1 }}{{ break }}{{ end }}{{ . }}{{ end }};{{ end }}") == "0;0;"
    assert syntax_error("{{ break }}").message == "{{break}} outside {{range}}"


def test_define_template_and_block():
    assert r('{{ define "t" }}[{{ . }}]{{ end }}{{ template "t" .a }}{{ template "t" "lit" }}', {"a": "x"}) == \
        "[x][lit]"
    assert r('{{ block "b" . }}default {{ .a }}{{ end }}!', {"a": "x"}) == "default x!"
    # Definitions do not see the caller's variables; $ is the argument.
    assert r('{{ define "t" }}{{ $ }}{{ end }}{{ $v := 1 }}{{ template "t" 2 }}') == "2"
    assert r('{{ template "t" }}{{ define "t" }}[{{ . }}]{{ end }}') == "[]"
    countdown = ('{{ define "c" }}{{ if gt . 0 }}{{ . }}{{ template "c" (sub . 1) }}{{ end }}{{ end }}'
                 '{{ template "c" 3 }}')
    assert r(countdown) == "321"


def test_long_else_if_chains_and_their_variables():
    src = "{{ if eq .n 0 }}zero" + "".join(f"{{{{ else if eq .n {i} }}}}n{i}" for i in range(1, 150)) + \
        "{{ else }}big{{ end }}"
    assert [r(src, {"n": n}) for n in (0, 7, 149, 500)] == ["zero", "n7", "n149", "big"]
    # A variable from the if's pipeline is visible in later branches; one from the body is not.
    assert r("{{ if $x := .a }}A{{ else if $x }}B{{ else }}[{{ $x }}]{{ end }}", {"a": 0}) == "[0]"
    assert syntax_error("{{ if .a }}{{ $y := 1 }}{{ else }}{{ $y }}{{ end }}").message == "undefined variable '$y'"
    assert syntax_error("{{ if 1 }}" + "{{ else if 1 }}" * 201 + "{{ end }}").message == \
        "more than 200 {{else if}} branches"


def test_template_recursion_is_limited():
    err = render_error('{{ define "r" }}x{{ template "r" . }}{{ end }}\n{{ template "r" . }}')
    assert err.line == 1
    assert err.message == 'template "r" called more than 20 levels deep (endless recursion?)'


def test_template_errors_at_compile_time():
    assert syntax_error('{{ template "nope" }}').message == 'template "nope" is not defined'
    assert syntax_error('{{ define "a" }}1{{ end }}{{ define "a" }}2{{ end }}').message == \
        'template "a" is defined twice'
    assert syntax_error('{{ if true }}{{ define "a" }}x{{ end }}{{ end }}').message == \
        "{{define}} is only allowed at the top level of a template"


# ---------------------------------------------------------------- printing like Go's fmt

@pytest.mark.parametrize("value, text", [
    (42, "42"), (-3, "-3"), (10**20, "100000000000000000000"),
    (1.0, "1"), (1.5, "1.5"), (-2.25, "-2.25"), (0.1, "0.1"), (123456.0, "123456"), (0.0001, "0.0001"),
    (1e21, "1e+21"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (0.00001, "1e-05"), (2.5e-7, "2.5e-07"),
    (True, "true"), (False, "false"), (None, ""), ("text", "text"),
    (["a", "b", "c"], '["a","b","c"]'), ([1, [2, 3.5], None], "[1,[2,3.5],null]"),
    ({"b": [1, 2], "a": "x", "c": {"z": True}}, '{"a":"x","b":[1,2],"c":{"z":true}}'),
    ([], "[]"), ({}, "{}"),
])
def test_printing_values(value, text):
    assert r("{{ .v }}", {"v": value}) == text


# ---------------------------------------------------------------- Go builtins

def test_and_or_return_operands_and_short_circuit():
    assert r("{{ and 1 0 2 }}|{{ and 1 2 }}|{{ or 0 \"\" \"x\" }}|{{ or 0 \"\" }}|") == "0|2|x||"
    # The failing call is never evaluated.
    assert r('{{ or 1 (fail "boom") }}{{ and 0 (fail "boom") }}') == "10"
    assert r('{{ .x | and 1 }}', {"x": "piped"}) == "piped"
    assert render_error('{{ and 1 (fail "boom") }}').message == "error calling fail: boom"


def test_not_len_index_slice():
    data = {"l": [10, 20, 30], "m": {"k": {"n": "v"}}, "s": "héllo"}
    assert r("{{ not 0 }} {{ not .l }}", data) == "true false"
    assert r("{{ len .l }} {{ len .m }} {{ len .s }} {{ len .missing }}", data) == "3 1 5 0"
    assert r('{{ index .l 1 }} {{ index .m "k" "n" }} {{ index .m "zz" }}|', data) == "20 v |"
    assert r("{{ slice .l 1 }} {{ slice .l 1 2 }} {{ slice .s 1 3 }} {{ slice .l }}", data) == \
        "[20,30] [20] él [10,20,30]"
    err = render_error("x\n{{ index .l 5 }}", data)
    assert (err.line, err.message) == (2, "error calling index: index out of range: 5")
    assert render_error("{{ len 5 }}").message == "error calling len: len of type int"


def test_print_println_printf():
    assert r('{{ print "a" 1 2 "b" nil }}') == "a1 2b<nil>"
    assert r('{{ println "a" 1 }}') == "a 1\n"
    src = '{{ printf "%s|%d|%v|%q|%f|%.2f|%x|%X|%t|%%" "a" 42 1.5 "q\\"" 3.14159 3.14159 255 255 true }}'
    assert r(src) == 'a|42|1.5|"q\\""|3.141590|3.14|ff|FF|true|%'


@pytest.mark.parametrize("fmt, args, out", [
    ("%5d|%-5s|%05.1f", [42, "ab", 3.14159], "   42|ab   |003.1"),
    ("%+d %+d", [5, -5], "+5 -5"),
    ("%x %o %b %#x %#o", [-255, 8, 5, 255, 8], "-ff 10 101 0xff 010"),
    ("%c %U %q", [65, 65, 65], "A U+0041 'A'"),
    ("%e %g %g %G", [123456.789, 123456.789, 1e21, 1e-7], "1.234568e+05 123456.789 1e+21 1E-07"),
    ("%6.2f|%-8.3f|", [3.14159, 2.0], "  3.14|2.000   |"),
    ("%d %d", [3.0, 2], "3 2"),
    ("%.1f", [2], "2.0"),
    ("%v %v %v", [[1, "a"], {"k": 1}, None], "[1 a] map[k:1] <nil>"),
    ("%s", [None], "%!s(<nil>)"),
    ("%d", ["x"], "%!d(string=x)"),
    ("%s", [5], "%!s(int=5)"),
    ("%d %d", [1], "1 %!d(MISSING)"),
    ("%d", [1, 2, "x"], "1%!(EXTRA int=2, string=x)"),
    ("%[2]d %[1]d", [1, 2], "2 1"),
    ("%*d|%-*d|", [5, 42, 4, 7], "   42|7   |"),
    ("%x % x %X", ["hi", "hi", "é"], "6869 68 69 C3A9"),
    ("%q %+q %10.2s|", ["é\n", "é", "abc"], '"é\\n" "\\u00e9"         ab|'),
    ("%T %T %T %T %T %T", [1, 1.5, "s", [1], {}, None],
     "int float64 string []interface {} map[string]interface {} <nil>"),
    ("%!|%", [], "%!!(MISSING)|%!(NOVERB)"),
])
def test_printf_verbs(fmt, args, out):
    arg_src = " ".join(f"(index .args {i})" for i in range(len(args)))
    assert r(f"{{{{ printf .f {arg_src} }}}}", {"f": fmt, "args": args}) == out


def test_comparisons():
    assert r('{{ eq 2 1 2 }} {{ eq 1 3 }} {{ ne 1 2 }} {{ eq 1 1.0 }} {{ eq "a" "a" }}') == "true false true true true"
    assert r('{{ lt 1 2 }} {{ le 2 2 }} {{ gt 3 2.5 }} {{ ge 1 2 }} {{ lt "a" "b" }}') == "true true true false true"
    # As in Higress: a number equals its decimal string; other mixed types are simply unequal.
    assert r('{{ eq .id "5" }} {{ eq .flag "true" }} {{ eq .x nil }} {{ eq nil nil }}', {"id": 5, "flag": True}) == \
        "true false true true"
    assert r("{{ eq .l .l2 }}", {"l": [1, {"a": 2}], "l2": [1, {"a": 2}]}) == "true"
    err = render_error('{{ lt 1 "a" }}')
    assert err.message == "error calling lt: incompatible types for comparison: int and string"
    assert render_error("{{ lt true false }}").message == "error calling lt: invalid type for comparison: bool"


def test_html_js_urlquery():
    assert r("{{ html \"<a href='x'>&\\\"\" }}") == "&lt;a href=&#39;x&#39;&gt;&amp;&#34;"
    assert r('{{ js "a\'b\\"<>&=\\n" }}') == "a\\'b\\\"\\u003C\\u003E\\u0026\\u003D\\u000A"
    assert r('{{ urlquery "a b&c=d/é" }}') == "a+b%26c%3Dd%2F%C3%A9"
    assert r("{{ .q | urlquery }}", {"q": "x y"}) == "x+y"


# ---------------------------------------------------------------- Sprig

def test_default_empty_coalesce_ternary():
    assert r('{{ .missing | default "n/a" }}|{{ default "x" .v }}|{{ default "x" 0 }}|{{ default "x" false }}',
             {"v": "set"}) == "n/a|set|x|x"
    assert r("{{ default 5 .n }}", {"n": 0}) == "5"
    assert r('{{ empty "" }} {{ empty (list) }} {{ empty (dict) }} {{ empty 1 }} {{ empty .nope }}') == \
        "true true true false true"
    assert r('{{ coalesce .a "" "b" "c" }}|{{ coalesce 0 "" }}|') == "b||"
    assert r('{{ ternary "yes" "no" true }} {{ false | ternary "yes" "no" }}') == "yes no"


@pytest.mark.parametrize("value, text", [
    (5.0, "5"), (1e-5, "0.00001"), (1e-7, "1e-7"), (1e17, "100000000000000000"), (1e21, "1e+21"),
    (-0.5, "-0.5"), (123.456, "123.456"), (2**53, "9007199254740992"),
])
def test_to_json_writes_numbers_like_go(value, text):
    assert r("{{ toJson .v }}", {"v": value}) == text
    assert r("{{ toJson .v }}", {"v": [value, {"k": value}]}) == f'[{text},{{"k":{text}}}]'


def test_json_functions():
    data = {"o": {"b": [1, 2.0, 3.5], "a": "<x&y>", "c": None, "d": 1e21, "e": 1.5e-7}}
    assert r("{{ toJson .o }}", data) == '{"a":"\\u003cx\\u0026y\\u003e","b":[1,2,3.5],"c":null,"d":1e+21,"e":1.5e-7}'
    assert r("{{ toRawJson .o.a }}", data) == '"<x&y>"'
    assert r('{{ toPrettyJson .p }}', {"p": {"b": [1, 2], "a": {}}}) == \
        '{\n  "a": {},\n  "b": [\n    1,\n    2\n  ]\n}'
    assert r('{{ $o := fromJson .j }}{{ $o.a }} {{ $o.b.c }}', {"j": '{"a": [1, 2], "b": {"c": true}}'}) == "[1,2] true"
    assert r('{{ (fromJson "{\\"k\\": 1.5}").k }}') == "1.5"
    assert r('[{{ fromJson "not json" }}]') == "[]"


def test_encodings_and_hashes():
    assert r('{{ b64enc "hello" }} {{ b64dec "aGVsbG8=" }} {{ b64dec "!!" }}') == \
        "aGVsbG8= hello illegal base64 data at input byte 0"
    assert r('{{ b32enc "hi" }} {{ b32dec "NBUQ====" }}') == "NBUQ==== hi"
    assert r('{{ sha256sum "abc" }}') == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert r('{{ sha1sum "abc" }}') == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", r("{{ uuidv4 }}"))
    assert r("{{ uuidv4 }}") != r("{{ uuidv4 }}")


def test_string_functions():
    assert r('{{ upper "abc" }} {{ lower "ABC" }} {{ title "hello wORLD foo_bar x-y" }}') == \
        "ABC abc Hello WORLD Foo_bar X-Y"
    src = '[{{ trim "  a b \\n" }}] {{ trimAll "$" "$5.00$" }} {{ trimPrefix "ab" "abc" }} {{ trimSuffix "bc" "abc" }}'
    assert r(src) == "[a b] 5.00 c a"
    assert r('{{ replace "a" "o" "banana" }} {{ "banana" | replace "an" "" }}') == "bonono ba"
    assert r('{{ contains "an" "banana" }} {{ hasPrefix "ba" "banana" }} {{ hasSuffix "x" "banana" }}') == \
        "true true false"
    assert r('{{ quote "a" 1 nil "b\\"" }} {{ squote "a" }} {{ cat "a" 1 nil "b" }}') == \
        '"a" "1" "b\\"" \'a\' a 1 b'
    assert r('{{ repeat 3 "ab" }} {{ substr 1 3 "hello" }} {{ trunc 3 "hello" }} {{ trunc -3 "hello" }}') == \
        "ababab el hel llo"
    assert r('{{ abbrev 5 "hello world" }} {{ abbrev 20 "short" }} {{ nospace " a b\\tc " }}') == "he... short abc"
    assert r('{{ indent 2 "a\\nb" }}|{{ nindent 2 "a" }}') == "  a\n  b|\n  a"
    assert r('{{ upper .missing }}|{{ upper 5 }}') == "|5"


def test_split_join_lists():
    assert r('{{ join "," (list 1 "a" nil 2.5) }} {{ join "-" .l }}', {"l": ["x", "y"]}) == "1,a,2.5 x-y"
    assert r('{{ split "," "a,b" }} {{ (split "," "a,b")._1 }} {{ splitList "," "a,b,c" }}') == \
        '{"_0":"a","_1":"b"} b ["a","b","c"]'
    assert r('{{ toStrings (list 1 nil "a") }} {{ splitList "" "abc" }}') == '["1","a"] ["a","b","c"]'
    data = {"l": [1, 2, 3]}
    assert r("{{ first .l }} {{ last .l }} {{ rest .l }} {{ initial .l }} [{{ first (list) }}]", data) == \
        "1 3 [2,3] [1,2] []"
    assert r("{{ append .l 4 }} {{ .l }} {{ prepend .l 0 }} {{ concat .l (list 9) }}", data) == \
        "[1,2,3,4] [1,2,3] [0,1,2,3] [1,2,3,9]"
    assert r("{{ reverse .l }} {{ uniq (list 1 1.0 2 \"1\" 2) }} {{ compact (list 0 1 \"\" \"a\" nil) }}", data) == \
        '[3,2,1] [1,2,"1"] [1,"a"]'
    assert r("{{ has 2 .l }} {{ has 5 .l }} {{ without .l 2 }} {{ sortAlpha (list \"b\" \"a\") }}", data) == \
        'true false [1,3] ["a","b"]'
    assert r("{{ until 3 }}") == "[0,1,2]"


def test_dict_functions_and_set_does_not_touch_input_data():
    src = ('{{ $d := dict "b" 2 "a" 1 }}{{ $_ := set $d "c" 3 }}'
           '{{ keys $d }} {{ values $d }} {{ get $d "a" }} [{{ get $d "z" }}] {{ hasKey $d "c" }} {{ $d.c }}')
    assert r(src) == '["a","b","c"] [1,2,3] 1 [] true 3'
    data = {"obj": {"k": "original"}}
    assert r('{{ $x := set .obj "k" "changed" }}{{ $x.k }}/{{ .obj.k }}', data) == "changed/original"
    assert data == {"obj": {"k": "original"}}
    assert r('{{ unset (dict "a" 1 "b" 2) "a" }} {{ pick .m "a" }} {{ omit .m "a" }}', {"m": {"a": 1, "b": 2}}) == \
        '{"b":2} {"a":1} {"b":2}'
    assert r('{{ dict "odd" }}') == '{"odd":""}'


def test_math_functions():
    assert r("{{ add 1 2 3 }} {{ add1 5 }} {{ sub 5 7 }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ div -7 2 }}") == \
        "6 6 -2 24 3 -3"
    assert r("{{ mod 7 3 }} {{ mod -7 3 }} {{ max 1 5 3 }} {{ min 4 2 8 }} {{ add 1.9 1 }} {{ add \"2\" 1 }}") == \
        "1 -1 5 2 2 3"
    assert r("{{ floor 2.7 }} {{ ceil 2.1 }} {{ round 3.14159 2 }} {{ round 2.5 0 }} {{ floor 3 }}") == "2 3 3.14 3 3"
    assert r("{{ addf 0.1 0.2 }} {{ mulf 1.5 2 }} {{ divf 1 4 }} {{ subf 1 0.9 }}") == "0.3 3 0.25 0.1"
    assert r('{{ int "42" }} {{ int 3.9 }} {{ int64 "x" }} {{ float64 "1.5" }} {{ toString 5 }} {{ atoi "-12" }} '
             '{{ atoi "1.5" }}') == "42 3 0 1.5 5 -12 0"
    assert render_error("{{ div 1 0 }}").message == "error calling div: integer divide by zero"
    assert r("{{ mul 9223372036854775807 2 }}") == "-2"  # int64 wraps as in Go


def test_regex_functions():
    assert r('{{ regexMatch "^a.c$" "abc" }} {{ regexMatch "^a.c$" "abcd" }}') == "true false"
    assert r('{{ regexFind "[0-9]+" "ab123cd45" }} {{ regexFindAll "[0-9]+" "ab123cd45" -1 }}') == '123 ["123","45"]'
    assert r('{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }}') == "-W-xxW-"
    assert r('{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "$1W" }}') == "---"  # $1W names group "1W"
    assert r('{{ regexReplaceAll "(?P<w>o+)" "foo boo" "<$w>" }}') == "f<oo> b<oo>"
    assert r('{{ regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}" }}') == "-${1}-${1}-"
    assert r('{{ regexSplit "[,;]" "a,b;c" -1 }} {{ regexSplit "," "a,b,c" 2 }}') == '["a","b","c"] ["a","b,c"]'
    too_long = "a" * 501
    assert syntax_error(f'{{{{ regexMatch "{too_long}" "x" }}}}').message == \
        "regexMatch: regular expression longer than 500 characters"
    assert syntax_error('{{ regexFind "(" "x" }}').message.startswith('regexFind: error parsing regexp "(":')
    err = render_error('{{ regexMatch "a" .s }}', {"s": "a" * 100_001})
    assert err.message == "error calling regexMatch: regular expression input longer than 100000 characters"
    err = render_error("{{ regexMatch .p \"x\" }}", {"p": too_long})
    assert err.message == "error calling regexMatch: regular expression longer than 500 characters"


def test_regex_functions_have_gos_semantics():
    # Go's regexp is RE2: these are the answers Go gives, several of which Python's re does not.
    # (Raw strings: the template's own string literals need "\\d" for the pattern \d.)
    assert r('{{ regexMatch "(?i)ABC" "xabcx" }} {{ regexMatch "ABC" "xabcx" }}') == "true false"
    assert r(r'{{ regexFindAll "\\pL+" "héllo wörld 42" -1 }}') == '["héllo","wörld"]'
    assert r('{{ regexFind "a|ab" "ab" }} {{ regexFind "ab|a" "ab" }}') == "a ab"  # leftmost-first, not longest
    assert r(r'{{ regexMatch "^a$" "a\n" }} {{ regexMatch "^a\\z" "a" }}') == "false true"  # $ ends the text
    assert r(r'{{ regexMatch "(?m)^a$" "a\nb" }}') == "true"
    assert r('{{ regexFind "a+?" "aaa" }} {{ regexFind "(?U)a+" "aaa" }} {{ regexFind "a+" "aaa" }}') == "a a aaa"
    assert r('{{ regexFindAll "a*" "baaac" -1 }}') == '["","aaa",""]'  # no empty match right after a match
    assert r('{{ regexReplaceAll "a*" "baaac" "-" }}') == "-b-c-"
    assert r('{{ regexSplit "a*" "baaac" -1 }}') == '["b","c"]'
    assert r('{{ regexFindAll "^a" "aaa" -1 }} {{ regexFindAll "a" "aaa" 2 }}') == '["a"] ["a","a"]'
    assert r('{{ regexFindAll "." "日本語" -1 }} {{ regexReplaceAll "" "日本" "-" }}') == '["日","本","語"] -日-本-'
    assert r('{{ regexReplaceAll "(?<w>o+)" "foo boo" "<${w}>" }}') == "f<oo> b<oo>"
    assert r('{{ regexReplaceAll "(a)|(b)" "ab" "[$1$2]" }} {{ regexReplaceAll "a" "aa" "$$" }}') == "[a][b] $$"
    assert r(r'{{ regexMatch "\\d" "٣" }} {{ regexMatch "\\s" "\v" }} {{ regexMatch "\\bx\\b" "a x" }}') == \
        "false false true"
    assert r('{{ regexQuoteMeta "a.b*c[d]" }}') == r"a\.b\*c\[d\]"
    assert r('{{ regexMatch "a" .s }}', {"s": "\ud800a"}) == "true"  # a lone surrogate reads as U+FFFD, as in Go


def test_regex_errors_read_like_go():
    def message(src):
        return syntax_error(src).message

    assert message('{{ regexFind "(" "x" }}') == 'regexFind: error parsing regexp "(": missing closing ): `(`'
    assert message('{{ regexMatch "a**" "x" }}') == \
        'regexMatch: error parsing regexp "a**": invalid nested repetition operator: `**`'
    assert message('{{ regexMatch "a{1001}" "x" }}') == \
        'regexMatch: error parsing regexp "a{1001}": invalid repeat count: `{1001}`'
    assert message(r'{{ regexMatch "\\C" "x" }}') == \
        r'regexMatch: error parsing regexp "\\C": invalid escape sequence: `\C`'
    assert message(r'{{ regexMatch "(a)\\1" "x" }}') == (
        r'regexMatch: error parsing regexp "(a)\\1": invalid escape sequence: `\1` '
        "(backreferences are not supported by Go's linear-time regexp)")
    assert message('{{ regexMatch "a(?=b)" "x" }}') == (
        'regexMatch: error parsing regexp "a(?=b)": invalid or unsupported Perl syntax: `(?=` '
        "(lookahead is not supported by Go's linear-time regexp)")
    assert message('{{ regexMatch "(?<!a)b" "x" }}') == (
        'regexMatch: error parsing regexp "(?<!a)b": invalid or unsupported Perl syntax: `(?<!` '
        "(lookbehind is not supported by Go's linear-time regexp)")
    assert message('{{ regexMatch "(?P<n>a)(?P=n)" "x" }}') == (
        'regexMatch: error parsing regexp "(?P<n>a)(?P=n)": invalid or unsupported Perl syntax: `(?P` '
        "(named backreferences are not supported by Go's linear-time regexp)")
    # A pattern that only arrives with the data fails when the template renders, with the same words.
    err = render_error("{{ regexMatch .p .s }}", {"p": "(?=x)", "s": "x"})
    assert err.message.startswith('error calling regexMatch: error parsing regexp "(?=x)": invalid or unsupported')


def test_a_pathological_regex_answers_in_linear_time():
    # Python's re backtracks for ever on this; RE2 answers well inside the render's own time limit.
    hostile = "a" * 99_999 + "!"
    assert r('{{ regexMatch "^(a+)+$" .s }}', {"s": hostile}, timeout=0.5) == "false"
    assert r('{{ regexMatch "^(a|aa)+$" .s }}', {"s": "a" * 100_000}, timeout=0.5) == "true"
    assert r('{{ len (regexReplaceAll "(a*)*b" .s "x") }}', {"s": hostile}, timeout=0.5) == "100000"


def test_compiled_patterns_are_cached_and_bounded():
    from gateway.gotemplate import regex

    regex.compile_regex.cache_clear()
    for i in range(regex.CACHE_SIZE + 50):
        regex.compile_regex(f"x{i}")
    info = regex.compile_regex.cache_info()
    assert info.currsize == regex.CACHE_SIZE
    assert regex.compile_regex("x299") is regex.compile_regex("x299")


def test_the_time_limit_holds_inside_one_expensive_call():
    # One regexFindAll call whose searches add up to quadratic work: stopped by the clock, not after it.
    err = render_error('{{ regexFindAll "a.*b|a" .s -1 }}', {"s": "a" * 100_000}, timeout=0.05)
    assert (err.message, err.line) == ("rendering took longer than 0.05 seconds", 1)
    # uniq over a list holding one big map many times: each element is encoded to compare it.
    big = {f"k{i}": "v" * 50 for i in range(2000)}
    src = "{{ $l := list }}{{ range 3000 }}{{ $l = append $l $.big }}{{ end }}\n{{ len (uniq $l) }}"
    err = render_error(src, {"big": big}, timeout=0.05, max_steps=10**9)
    assert err.message == "rendering took longer than 0.05 seconds"
    # Deep comparison of two such lists, and a gjson path over lists of lists.
    src = ("{{ $a := list }}{{ $b := list }}{{ range 3000 }}{{ $a = append $a $.big }}"
           "{{ $b = append $b (fromJson (toJson $.big)) }}{{ end }}{{ eq $a $b }}")
    err = render_error(src, {"big": {"k": list(range(3000))}}, timeout=0.2, max_steps=10**9)
    assert err.message == "rendering took longer than 0.2 seconds"
    row = list(range(3000))
    err = render_error('{{ len (gjson "#.#.0") }}', [[row] * 3000] * 300, timeout=0.05)
    assert (err.message, err.line) == ("rendering took longer than 0.05 seconds", 1)


def test_a_render_can_stop_at_a_slice_and_run_again():
    slow = compile_template("{{ range 1000000 }}{{ end }}done")
    with pytest.raises(SliceSpent):
        slow.render({}, timeout=10, max_steps=10**9, slice_seconds=0.001)
    assert slow.render({}, timeout=10, max_steps=10**9, yield_gil=True) == "done"
    assert compile_template("{{ 1 }}").render({}, slice_seconds=0.001) == "1"
    # A re-run counts the time already spent: past its limit it stops with the limit's message.
    with pytest.raises(TemplateRenderError) as info:
        slow.render({}, timeout=0.5, max_steps=10**9, started=time.perf_counter() - 1)
    assert info.value.message == "rendering took longer than 0.5 seconds"


def test_date_functions():
    assert r('{{ date "2006-01-02 15:04:05" 0 }}') == "1970-01-01 00:00:00"
    assert r('{{ date "Mon Jan _2 3:04PM MST" 1700000000 }}') == "Tue Nov 14 10:13PM UTC"
    assert r('{{ date "2006-01-02T15:04:05.000Z07:00" 1700000000 }}') == "2023-11-14T22:13:20.000Z"
    assert r('{{ dateInZone "2006-01-02 15:04 MST -07:00" 1700000000 "Asia/Shanghai" }}') == \
        "2023-11-15 06:13 CST +08:00"
    assert r('{{ unixEpoch "2023-11-14T22:13:20Z" }} {{ date "January 2, 2006" "2023-11-14T22:13:20Z" }}') == \
        "1700000000 November 14, 2023"
    year = r('{{ now | date "2006" }}')
    assert year in {str(datetime.now(timezone.utc).year), str(datetime.now(timezone.utc).year - 1)}
    assert abs(int(r("{{ unixEpoch now }}")) - time.time()) < 5


def test_gjson():
    data = {"items": [{"name": "a", "tags": ["x"]}, {"name": "b", "tags": ["y", "z"]}],
            "a.b": "dotted", "obj": {"x": 1, "y": [True, None]}}
    assert r('{{ gjson "items.0.name" }} {{ gjson "items.#" }} {{ gjson "a\\\\.b" }}', data) == "a 2 dotted"
    assert r('{{ gjson "items.#.name" }} {{ gjson "obj" }} {{ gjson "items.#.tags.#" }}', data) == \
        '["a","b"] {"x":1,"y":[true,null]} [1,2]'
    assert r('[{{ gjson "items.9.name" }}{{ gjson "nope.deeper" }}]', data) == "[]"
    assert r('{{ printf "%v" (gjson "obj") }} {{ (gjson "obj").x }} {{ toString (gjson "items.#.name") }}', data) == \
        '{"x":1,"y":[true,null]} 1 ["a","b"]'
    # gjson results are values: they can be ranged over, compared and measured.
    assert r('{{ range gjson "items.#.name" }}<{{ . }}>{{ end }} {{ len (gjson "items") }}', data) == "<a><b> 2"
    # The path is read from dot, so inside a range it is relative to the element.
    assert r('{{ range .items }}{{ gjson "tags.0" }}{{ end }}', data) == "xy"
    assert syntax_error('{{ gjson "items.*.name" }}').message == (
        'gjson: gjson path "items.*.name": wildcards (* and ?) are not supported; '
        'escape them with \\ to match literally')
    assert syntax_error('{{ gjson "items.#(name==a)" }}').message.endswith("queries (#(...)) are not supported")


def test_higress_style_templates():
    data = {"items": [{"name": "Rex", "id": 1}, {"name": "Tom", "id": 2}], "obj": {"k": [1, 2]}}
    assert r("{{- range $i, $p := .items }}{{ if $i }}, {{ end }}{{ $p.name }}{{ end }}", data) == "Rex, Tom"
    src = '# Pets ({{ len .items }}) {{ gjson "items.0.name" }} {{ .missing | default "n/a" }} {{ toJson .obj }}'
    assert r(src, data) == '# Pets (2) Rex n/a {"k":[1,2]}'
    md = ("# Results\n{{- range .items }}\n- **{{ .name }}** (#{{ .id }})\n{{- end }}\n"
          "Total: {{ len .items }}")
    assert r(md, data) == "# Results\n- **Rex** (#1)\n- **Tom** (#2)\nTotal: 2"
    request = '{"query": {{ .args.q | toJson }}, "limit": {{ .args.limit | default 10 }}, "key": "{{ .config.key }}"}'
    assert r(request, {"args": {"q": 'say "hi"'}, "config": {"key": "k1"}}) == \
        '{"query": "say \\"hi\\"", "limit": 10, "key": "k1"}'


# ---------------------------------------------------------------- syntax errors with lines

@pytest.mark.parametrize("src, line, message", [
    ("ok\n{{ foo }}", 2, 'unknown function "foo"'),
    ("{{ call .f }}", 1, 'function "call" is not supported in tool templates'),
    ("{{ env \"HOME\" }}", 1, 'function "env" is not supported in tool templates'),
    ("a\n\n{{ end }}", 3, "unexpected {{end}}: there is no {{if}}, {{range}}, {{with}} or {{define}} to close"),
    ("{{ else }}", 1, "unexpected {{else}} outside {{if}}, {{range}} or {{with}}"),
    ("x\n{{ if .a }}\nbody", 2, "{{if}} has no matching {{end}}"),
    ("{{ range .a }}{{ else }}{{ else }}{{ end }}", 1, "{{range}} has a second {{else}}; expected {{end}}"),
    ("{{ .a ", 1, "unclosed action: missing }}"),
    ("{{ (upper .a }}", 1, "unclosed left parenthesis"),
    ("{{ upper .a) }}", 1, "unexpected right parenthesis"),
    ('{{ "abc }}', 1, "unterminated quoted string"),
    ("{{/* no end }}", 1, "unclosed comment"),
    ("{{/* c */ .a }}", 1, "comment ends before closing delimiter: write {{/* ... */}}"),
    ("{{ upper }}", 1, "wrong number of args for upper: want 1 got 0"),
    ('{{ "a" | replace "x" }}', 1, "wrong number of args for replace: want 3 got 2"),
    ("{{ .a 1 }}", 1, ".a is not a function, so it cannot take arguments"),
    ("{{ .a | 1 }}", 1, "non executable command in pipeline stage 2: a pipeline can only pass its value to a function"),
    ("{{ .x | .a }}", 1, ".a is not a function, so it cannot take a piped value"),
    ("{{ .x | }}", 1, "missing command after |"),
    ('{{ define "a" }}1{{ end }}\n{{ block "a" . }}2{{ end }}', 2, 'template "a" is defined twice'),
    ("{{ nil }}", 1, "nil is not a command"),
    ("{{ }}", 1, "missing value for action"),
    ("{{ 1.2.3 }}", 1, "bad number syntax: '1.2.'"),
    ("{{ 3i }}", 1, "complex numbers are not supported: 3i"),
    ("{{ \"a\\q\" }}", 1, "unknown escape sequence \\q in string"),
    ("{{ $x, $y := .a }}", 1, "too many declarations in command"),
    ("{{ if }}{{ end }}", 1, "missing value for {{if}}"),
    ("{{ 'ab' }}", 1, "malformed character constant: 'ab'"),
    ("{{ .a # }}", 1, "unexpected character '#' in action"),
    ("{{ .user-id }}", 1, "bad character '-' after '.user' (for a key with \"-\" in it, write index . \"user-...\")"),
    ("{{ if 1 }}\n{{ else if 2 }}\n{{ else with 3 }}{{ end }}", 3, "{{else with}} is not allowed in {{if}}"),
])
def test_syntax_errors_name_the_line(src, line, message):
    err = syntax_error(src)
    assert (err.line, err.message) == (line, message)
    assert str(err) == f"line {line}: {message}"
    assert isinstance(err, TemplateError)


# ---------------------------------------------------------------- limits and sandbox

def test_output_limit():
    err = render_error("{{ range 100 }}0123456789{{ end }}", max_output=500)
    assert err.message == "output is longer than 500 characters"
    assert r("{{ range 50 }}0123456789{{ end }}", max_output=500) == "0123456789" * 50
    assert render_error("static text", max_output=3).message == "output is longer than 3 characters"


def test_timeout_stops_an_expensive_nested_range():
    started = time.perf_counter()
    err = render_error("{{ range 1000 }}{{ range 1000 }}{{ range 1000 }}{{ end }}{{ end }}{{ end }}",
                       timeout=0.05, max_steps=10**12)
    assert err.message == "rendering took longer than 0.05 seconds"
    assert time.perf_counter() - started < 1.0


def test_step_budget():
    err = render_error("{{ range 1000 }}{{ range 1000 }}{{ end }}{{ end }}", timeout=30, max_steps=10_000)
    assert err.message == "rendering took more than 10000 steps"
    assert r("{{ range 10 }}{{ end }}done", max_steps=12) == "done"


def test_growth_of_intermediate_values_is_bounded():
    err = render_error('{{ $s := "ab" }}{{ range 40 }}{{ $s = printf "%s%s" $s $s }}{{ end }}')
    assert err.message == "error calling printf: result is longer than 1048576 characters"
    err = render_error("{{ $l := list }}{{ range 20000 }}{{ $l = append $l 1 }}{{ end }}")
    assert err.message == "error calling append: append would make a list of more than 10000 items"
    err = render_error('{{ repeat 2000000 "ab" }}')
    assert err.message == "error calling repeat: repeat would make a string of more than 1048576 characters"
    err = render_error('{{ printf "%*d" 100000 1 }}')
    assert err.message == "error calling printf: printf width over 10000"
    err = render_error('{{ $d := dict }}{{ $_ := set $d "self" $d }}{{ toJson $d }}')
    assert err.message == "error calling toJson: value is nested more than 100 levels deep"


def test_templates_reach_only_keys_and_indexes():
    class Secretive:
        secret = "do not show"

        def __str__(self):
            raise AssertionError("str() must not be called on data")

    err = render_error("{{ .obj.secret }}", {"obj": Secretive()})
    assert err.message == "can't evaluate field secret in type Secretive: only maps (JSON objects) have fields"
    assert r("[{{ .__class__ }}{{ .keys }}{{ .items }}]", {"a": 1}) == "[]"
    assert r("{{ .obj }}", {"obj": Secretive()}) == "%!v(Secretive)"


def test_function_errors_are_render_errors_with_line():
    err = render_error("a\nb\n{{ fail \"custom message\" }}")
    assert (err.line, err.message) == (3, "error calling fail: custom message")
    err = render_error("{{ repeat \"x\" \"y\" }}")
    assert err.message == 'error calling repeat: repeat count must be an integer, not string "x"'


# ---------------------------------------------------------------- API

def test_compile_is_cached_and_templates_are_reusable():
    src = "cached {{ . }}"
    tpl = compile_template(src)
    assert isinstance(tpl, Template)
    assert compile_template(src) is tpl
    assert [tpl.render(i) for i in range(3)] == ["cached 0", "cached 1", "cached 2"]


def test_error_classes():
    assert issubclass(TemplateSyntaxError, TemplateError)
    assert issubclass(TemplateRenderError, TemplateError)
    err = TemplateRenderError("boom", None)
    assert str(err) == "boom"
    assert (err.message, err.line) == ("boom", None)


def test_long_inputs_cost_linear_time_and_keep_the_clock():
    # Repeated calls on a long text each read the clock, so a handful of them cannot outlast the limit.
    err = render_error("{{ range 100 }}{{ $t := title $.s }}{{ end }}", {"s": "ab " * 400_000}, timeout=0.05)
    assert err.message == "rendering took longer than 0.05 seconds"
    # Functions that work a chunk at a time give exactly the whole-text answer.
    import base64

    text = ('say "hi"\n\\ ' * 20_000) + "é"
    expected = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    assert r("{{ quote .s }}", {"s": text}) == expected
    assert r('{{ printf "%q" .s }}', {"s": text}) == expected
    assert r("{{ b32enc .s }}", {"s": text}) == base64.b32encode(text.encode()).decode()
    assert r("{{ html .s }}", {"s": text}) == text.replace("&", "&amp;").replace('"', "&#34;")
    assert r('{{ printf "%x|% x|%#x|% #X" "hi" "hi" "hi" "hi" }}') == "6869|68 69|0x6869|0X68 0X69"
    assert r('{{ date .layout 0 }}', {"layout": "2006." + "0" * 500}) == "1970.000000000"  # 9 digits at most
    assert render_error('{{ date .layout 0 }}', {"layout": "2006" * 251}).message == \
        "error calling date: date layout longer than 1000 characters"
    err = render_error('{{ sortAlpha .l }}', {"l": ["x"] * 100_001})
    assert err.message == "error calling sortAlpha: sortAlpha of more than 100000 strings"


def test_caches_keep_only_short_keys():
    from gateway.gotemplate import gjson

    gjson.parse_path.cache_clear()
    r("{{ gjson .p }}", {"p": "a" * 2000, "a": 1})
    r('{{ gjson "a" }}', {"a": 1})
    assert gjson.parse_path.cache_info().currsize == 1
    err = render_error("{{ gjson .p }}", {"p": "a" * 5000})
    assert err.message == f'error calling gjson: gjson path "{"a" * 50}...": the path is longer than 4096 characters'


def test_calls_making_long_lists_read_the_clock():
    # Fewer steps than one clock batch, each copying a long list: the copies themselves stop at the limit.
    err = render_error("{{ range 100 }}{{ $x := rest $.l }}{{ end }}", {"l": list(range(1_000_000))}, timeout=0.01)
    assert err.message == "rendering took longer than 0.01 seconds"
