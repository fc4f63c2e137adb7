"""kontain.oci.fastjson against the json package: the same values, text and errors."""

import json

import pytest

from kontain.oci import fastjson

TEXTS = [
    '{"ociVersion": "1.0.2", "process": {"args": ["/bin/sh", "-c", "echo \\u00e9 \\"q\\""], "env": []}}',
    '  [1, 2.5, -3e10, true, false, null, "x", {}, []]  \n',
    '{"a": NaN, "b": Infinity, "c": -Infinity}',
    '{"big": 123456789012345678901234567890, "u": "\\ud83d\\ude00", "dup": 1, "dup": 2}',
    '"just a string"', "42", "\t{}\r\n",
]
BAD = ["", "   ", "{", '{"a": 1} x', "[1,]", "{'a': 1}", '{"a": "\x01"}', "nul", "[1] [2]"]


@pytest.mark.parametrize("text", TEXTS)
def test_loads_as_json(text):
    got, want = fastjson.loads(text), json.loads(text)
    assert json.dumps(got) == json.dumps(want) and type(got) is type(want)


@pytest.mark.parametrize("text", BAD)
def test_errors_are_json_errors(text):
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        fastjson.loads(text)
    assert str(got.value) == str(want.value)


@pytest.mark.parametrize("text", TEXTS)
def test_dumps_as_json(text):
    value = json.loads(text)
    assert fastjson.dumps(value) == json.dumps(value)


def test_dumps_what_json_refuses():
    for value in ({"a": object()}, [{1j: 2}]):
        with pytest.raises(TypeError):
            json.dumps(value)
        with pytest.raises(TypeError):
            fastjson.dumps(value)
    assert fastjson.dumps({1: [None], 2.5: "x"}) == json.dumps({1: [None], 2.5: "x"})


def test_bytes_and_files(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(TEXTS[0])
    with open(p) as f:
        assert fastjson.load(f) == json.loads(TEXTS[0])
    assert fastjson.loads(TEXTS[0].encode()) == json.loads(TEXTS[0])
