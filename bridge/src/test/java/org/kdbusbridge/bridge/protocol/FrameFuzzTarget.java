// The property every fuzzer of the frame parser checks, for one input:
//  * MessageFraming.frameLength, MessageHeader.wrap, validateBody, MessageWriter.spliceSender and
//    the body decoders the bus runs on accepted messages throw nothing but ProtocolException;
//  * nothing reads outside the input: the input sits in a larger buffer whose limit is the
//    input's end, so any over-read is an IndexOutOfBoundsException, i.e. a failure;
//  * an accepted message re-validates after the SENDER splice, with the same type, flags,
//    serial, routing fields and body bytes and exactly the bus's SENDER;
//  * a message the validator accepted decodes completely (BodyReader) and its match args too.
// Time per input is bounded by the callers (they measure each call).
package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

final class FrameFuzzTarget {
    enum Outcome { INCOMPLETE, REJECTED, ACCEPTED }

    static final String SENDER = ":1.4242";

    private final MessageHeader header = new MessageHeader();
    private final MessageHeader again = new MessageHeader();

    /** Runs one input; throws AssertionError (with the reason) when a property is violated. */
    Outcome run(byte[] data, int leadingSlack, boolean flipBufferOrder) {
        // The message at an arbitrary offset, garbage before it, and nothing readable after it.
        ByteBuffer buf = ByteBuffer.allocate(leadingSlack + data.length + 64);
        for (int i = 0; i < leadingSlack; i++) buf.put(i, (byte) 0xa5);
        buf.put(leadingSlack, data, 0, data.length);
        buf.limit(leadingSlack + data.length);
        ByteOrder msgOrder = data.length > 0 && data[0] == 'B' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
        buf.order(flipBufferOrder ? (msgOrder == ByteOrder.BIG_ENDIAN ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN) : msgOrder);
        int frame;
        try {
            long len = MessageFraming.frameLength(buf, leadingSlack, data.length);
            if (len < 0) {
                check(data.length < WireFormat.FIXED_HEADER_SIZE, "frameLength -1 with " + data.length + " bytes");
                return Outcome.INCOMPLETE;
            }
            check(len >= WireFormat.FIXED_HEADER_SIZE && len <= WireFormat.MAX_MESSAGE_SIZE, "frame length " + len);
            if (len > data.length) return Outcome.INCOMPLETE; // the session waits for the rest
            frame = (int) len;
            header.wrap(buf, leadingSlack, frame);
            header.validateBody();
        } catch (ProtocolException e) {
            check(e.getMessage() != null && !e.getMessage().isEmpty(), "ProtocolException without a reason");
            return Outcome.REJECTED;
        } catch (RuntimeException | StackOverflowError e) {
            throw new AssertionError("undocumented " + e + " for input " + hex(data), e);
        }
        try {
            acceptedChecks(buf, leadingSlack, frame);
            return Outcome.ACCEPTED;
        } catch (ProtocolException e) {
            // Only the splice may refuse an accepted message, and only for size.
            check(frame > WireFormat.MAX_MESSAGE_SIZE - 300, "accepted message then refused: " + e.getMessage() + " input " + hex(data));
            return Outcome.REJECTED;
        } catch (RuntimeException | StackOverflowError e) {
            throw new AssertionError("accepted message, then " + e + " for input " + hex(data), e);
        }
    }

    private void acceptedChecks(ByteBuffer buf, int off, int len) throws ProtocolException {
        // What the driver does with a call: decode every argument.
        BodyReader r = BodyReader.of(header);
        while (r.hasNext()) r.readValue();
        String[] args = new String[64];
        boolean[] isPath = new boolean[64];
        BodyReader.readMatchArgs(header, args, isPath, 64);

        byte[] out = MessageWriter.spliceSender(buf, off, header, SENDER);
        ByteBuffer ob = ByteBuffer.wrap(out);
        again.wrap(ob, 0, out.length);
        again.validateBody();
        check(again.type() == header.type() && again.flags() == header.flags() && again.serial() == header.serial(),
                "fixed header changed by the splice");
        check(SENDER.equals(again.sender()), "spliced SENDER is " + again.sender());
        check(eq(again.path(), header.path()) && eq(again.iface(), header.iface()) && eq(again.member(), header.member())
                && eq(again.errorName(), header.errorName()) && eq(again.destination(), header.destination())
                && eq(again.signature(), header.signature()) && again.replySerial() == header.replySerial()
                && again.unixFds() == header.unixFds(), "routing fields changed by the splice");
        check(again.bodyLength() == header.bodyLength(), "body length changed by the splice");
        byte[] b1 = new byte[(int) header.bodyLength()];
        buf.get(header.bodyOffset(), b1);
        byte[] b2 = Arrays.copyOfRange(out, again.bodyOffset(), again.bodyOffset() + (int) again.bodyLength());
        check(Arrays.equals(b1, b2), "body bytes changed by the splice");
        // What PayloadArgs does for argN rules, on the spliced copy the receivers get.
        String[] args2 = new String[64];
        boolean[] isPath2 = new boolean[64];
        BodyReader.readMatchArgs(again, args2, isPath2, 64);
        check(Arrays.equals(args, args2) && Arrays.equals(isPath, isPath2), "match args differ after the splice");
    }

    private static boolean eq(Object a, Object b) {
        return a == null ? b == null : a.equals(b);
    }

    private static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < Math.min(b.length, 512); i++) sb.append(String.format("%02x", b[i]));
        if (b.length > 512) sb.append("...(").append(b.length).append(" bytes)");
        return sb.toString();
    }
}
