"""cgen: C literals and the encoder of model text."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from edgec.ir import cgen


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=1, max_size=64))
def test_fast_float_literals_equal_c_float(values):
    arr = np.array(values, np.float32)
    assert cgen.float_literals(arr) == [cgen.c_float(v) for v in arr]


def test_fast_float_literals_on_every_exponent():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 1 << 32, 20000, dtype=np.uint64).astype(np.uint32)
    arr = bits.view(np.float32)
    edges = np.array([0.0, -0.0, 1e-5, 9.99999e-6, 1e7, 1e8, 99999999, 1e-45, 3.4028235e38,
                      1.1754944e-38, 123456.7, 1234567.8, 12345678], np.float32)
    for a in (arr, edges):
        assert cgen.float_literals(a) == [cgen.c_float(v) for v in a]


@given(st.lists(st.integers(-128, 127), min_size=1, max_size=50))
def test_int8_array_body_as_c_int(values):
    arr = np.array(values, np.int8)
    body = cgen.array_body(arr, "int8")
    assert body.replace("{", "").replace("}", "").replace("\n", "").replace(" ", "").rstrip(",").split(",") == \
        [cgen.c_int(v, "int8") for v in values]


@given(st.text())
def test_encoded_text_is_inert(s):
    """No comment delimiter, trigraph, line break, directive or quote can come out."""
    for out in (cgen.comment_text(s, 10_000), cgen.c_string(s)[1:-1]):
        assert all(32 <= ord(c) < 127 for c in out)
        for bad in ("*/", "/*", "//", "??", "\n", "#", '"'):
            assert bad not in out


# ---- every symbol of a bundle carries its name -------------------------------------------

def test_prefix_symbols_renames_identifiers_not_literals():
    src = ('/* see edgec_srdhm, edgec_trace */\n'
           'static const edgec_lut_t edgec_l3_lut_a = {edgec_l3_lut_a_tab, 0};\n'
           'static int edgec_l3_conv(int x) { const char* s = "edgec_cat\\"edgec_x"; char c = \'e\';\n'
           '  EDGEC_TRACE_OUT(3, 0, &x, 4u); edgec_trace(3, 0, &x, 4u); edgec_profile_begin(3);\n'
           '  return edgec_srdhm(x, 1) + EDGEC_MAX(c, 2) + (int)s[0] + my_edgec_x; } // edgec_y\n')
    out = cgen.prefix_symbols(src, "kws")
    assert out == ('/* see kws_srdhm, edgec_trace */\n'
                   'static const kws_lut_t kws_l3_lut_a = {kws_l3_lut_a_tab, 0};\n'
                   'static int kws_l3_conv(int x) { const char* s = "edgec_cat\\"edgec_x"; char c = \'e\';\n'
                   '  EDGEC_TRACE_OUT(3, 0, &x, 4u); edgec_trace(3, 0, &x, 4u); edgec_profile_begin(3);\n'
                   '  return kws_srdhm(x, 1) + EDGEC_MAX(c, 2) + (int)s[0] + my_edgec_x; } // kws_y\n')
    assert cgen.prefix_symbols(src, "edgec") == src


def test_prefix_symbols_refuses_a_name_that_clashes():
    from edgec.ir.errors import EdgecError
    with pytest.raises(EdgecError, match="^--name kws: the generated C already uses kws_srdhm"):
        cgen.prefix_symbols("int kws_srdhm(void);\nint edgec_srdhm(void);\n", "kws")
    # the new name in a comment or a string is no clash
    assert cgen.prefix_symbols('/* kws_srdhm */ int edgec_srdhm; const char* t = "kws_srdhm";', "kws") == \
        '/* kws_srdhm */ int kws_srdhm; const char* t = "kws_srdhm";'
