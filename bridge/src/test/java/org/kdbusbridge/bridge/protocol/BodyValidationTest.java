// Tests body validation against the signature: padding, scalars, strings, arrays, variants, depth.
package org.kdbusbridge.bridge.protocol;

import static org.junit.jupiter.api.Assertions.*;
import static org.kdbusbridge.bridge.protocol.Wire.*;

import java.nio.ByteOrder;
import java.util.function.Consumer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class BodyValidationTest {
    static ByteOrder[] orders() {
        return new ByteOrder[] {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN};
    }

    private static void ok(ByteOrder o, String sig, Consumer<Wire> body, F... extra) throws Exception {
        MessageHeader h = Wire.wrap(call(o, sig, Wire.body(o, body), extra));
        h.validateBody();
    }

    private static void bad(ByteOrder o, String sig, Consumer<Wire> body, String fragment, F... extra) throws Exception {
        MessageHeader h = Wire.wrap(call(o, sig, Wire.body(o, body), extra));
        ProtocolException e = assertThrows(ProtocolException.class, h::validateBody);
        assertTrue(e.reason().contains(fragment), () -> "reason '" + e.reason() + "' lacks '" + fragment + "'");
    }

    @ParameterizedTest
    @MethodSource("orders")
    void nestedTypesValid(ByteOrder o) throws Exception {
        // a{sv} with an int, a string, and a nested struct variant; then (ia(sy)), then double, int64.
        ok(o, "a{sv}(ia(sy))dxbnqgo", w -> {
            w.array(8, x -> {
                x.pad(8).str("one").sig("i").u32(1);
                x.pad(8).str("two").sig("s").str("zwei");
                x.pad(8).str("three").sig("(yv)").pad(8).y(3).sig("as").array(4, z -> z.str("a").str("b"));
            });
            w.pad(8).u32(-5).array(8, x -> {
                x.pad(8).str("q").y(9);
                x.pad(8).str("r").y(10);
            });
            w.u64(Double.doubleToLongBits(1.5)).u64(-1).u32(1).u16(-2).u16(65535).sig("a{sv}").str("/x/y");
        });
    }

    @ParameterizedTest
    @MethodSource("orders")
    void emptyArrayKeepsElementPadding(ByteOrder o) throws Exception {
        ok(o, "a(ii)", w -> w.array(8, x -> {}));           // 4 length bytes + 4 padding
        assertEquals(8, Wire.body(o, w -> w.array(8, x -> {})).length);
        bad(o, "a(ii)", w -> w.u32(0), "truncated");        // padding missing
        ok(o, "ya(ii)", w -> w.y(1).array(8, x -> {}));
        bad(o, "a(ii)", w -> w.u32(0).raw(new byte[] {0, 0, 1, 0}), "padding");
    }

    @ParameterizedTest
    @MethodSource("orders")
    void scalarRules(ByteOrder o) throws Exception {
        bad(o, "b", w -> w.u32(2), "boolean");
        bad(o, "yu", w -> w.y(1).raw(new byte[] {0, 5, 0}).u32(1), "padding");
        bad(o, "u", w -> w.raw(new byte[] {1, 2}), "truncated");
        bad(o, "s", w -> w.u32(2).raw(new byte[] {'a', 'b', 'c'}), "NUL-terminated");
        bad(o, "s", w -> w.strBytes(new byte[] {'a', 0, 'b'}), "UTF-8");
        bad(o, "s", w -> w.strBytes(new byte[] {(byte) 0xc0, (byte) 0x80}), "UTF-8"); // overlong NUL
        bad(o, "s", w -> w.strBytes(new byte[] {(byte) 0xed, (byte) 0xa0, (byte) 0x80}), "UTF-8"); // surrogate
        ok(o, "s", w -> w.str("h\u00e9llo \u20ac \ud83d\ude00"));
        bad(o, "s", w -> w.u32(0x7fffffff).y(0), "exceeds");
        bad(o, "o", w -> w.str("not/a/path"), "object path");
        bad(o, "g", w -> w.sig("a{"), "dict entry");
        bad(o, "g", w -> w.y(1).y('s').y('x'), "NUL");
        bad(o, "i", w -> w.u32(1).u32(2), "trailing");
        // A unix fd index is checked for alignment only, as libdbus does (issue 13, item 8):
        // one past UNIX_FDS is relayed and left to the receiver.
        ok(o, "h", w -> w.u32(0));
        ok(o, "h", w -> w.u32(1), u(WireFormat.UNIX_FDS, 2));
        ok(o, "h", w -> w.u32(2), u(WireFormat.UNIX_FDS, 2));
        ok(o, "ah", w -> w.array(4, z -> z.u32(0xffffffffL).u32(7)), u(WireFormat.UNIX_FDS, 1));
        bad(o, "yh", w -> w.y(1).raw(new byte[] {0, 1, 0}).u32(0), "padding");
    }

    @ParameterizedTest
    @MethodSource("orders")
    void arrayRules(ByteOrder o) throws Exception {
        bad(o, "ai", w -> w.u32(WireFormat.MAX_ARRAY + 4L), "2^26");
        bad(o, "ai", w -> w.u32(6).u32(1).u32(2), "");             // element overruns declared length
        bad(o, "ai", w -> w.u32(12).u32(1).u32(2), "truncated");   // length beyond body
        bad(o, "as", w -> w.array(4, x -> x.str("ab").y(0)), "");  // trailing junk inside the array
        ok(o, "aai", w -> w.array(4, x -> x.array(4, z -> z.u32(1).u32(2)).array(4, z -> {})));
        ok(o, "a{oa{sv}}", w -> w.array(8, x -> x.pad(8).str("/p").array(8, z -> z.pad(8).str("k").sig("b").u32(1))));
    }

    @ParameterizedTest
    @MethodSource("orders")
    void variantRules(ByteOrder o) throws Exception {
        bad(o, "v", w -> w.sig("ss").str("a").str("b"), "single");
        bad(o, "v", w -> w.sig("").y(0), "empty");
        bad(o, "v", w -> w.sig("b").u32(3), "boolean");
        ok(o, "v", w -> w.sig("v").sig("v").sig("s").str("deep"));
    }

    private static Consumer<Wire> nestedVariants(int n) {
        return w -> {
            for (int i = 0; i < n; i++) w.sig("v");
            w.sig("y").y(1);
        };
    }

    @ParameterizedTest
    @MethodSource("orders")
    void variantNestingDepthLimited(ByteOrder o) throws Exception {
        ok(o, "v", nestedVariants(62));      // 63 variants + the byte: within 64
        bad(o, "v", nestedVariants(70), "deeper than 64");
    }

    @ParameterizedTest
    @MethodSource("orders")
    void noBodyForEmptySignature(ByteOrder o) throws Exception {
        MessageHeader h = Wire.wrap(call(o, "", new byte[0]));
        h.validateBody();
        assertEquals("", h.signature());
        // A signature with no body bytes fails.
        MessageHeader h2 = Wire.wrap(call(o, "s", new byte[0]));
        assertThrows(ProtocolException.class, h2::validateBody);
    }
}
