package org.kdbusbridge.bridge.config;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.StringReader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import javax.xml.stream.Location;
import javax.xml.stream.XMLInputFactory;
import javax.xml.stream.XMLStreamConstants;
import javax.xml.stream.XMLStreamException;
import javax.xml.stream.XMLStreamReader;

/**
 * One busconfig file as the element, text and end events the parser acts on, with their lines.
 * Read from XML once (StAX: fewer JDK classes at start than SAX, no DTD, no entities), then
 * kept by {@link ConfigCache} so an unchanged file is replayed without an XML parser.
 *
 * Invariants: events are in document order; a START's values are its name then attribute
 * name/value pairs; a document exists only for well-formed XML.
 */
final class ConfigDocument {
    static final byte START = 1;
    static final byte TEXT = 2;
    static final byte END = 3;

    /** What a document is replayed into (BusConfigParser's handler). */
    interface Sink {
        void start(String name, String[] attributes, int line) throws ConfigException;

        void text(String text, int line) throws ConfigException;

        void end(String name, int line) throws ConfigException;
    }

    private final byte[] kinds;
    private final int[] lines;
    private final String[][] values;

    private ConfigDocument(byte[] kinds, int[] lines, String[][] values) {
        this.kinds = kinds;
        this.lines = lines;
        this.values = values;
    }

    int size() {
        return kinds.length;
    }

    void replay(Sink sink) throws ConfigException {
        for (int i = 0; i < kinds.length; i++) {
            String[] v = values[i];
            switch (kinds[i]) {
                case START -> sink.start(v[0], Arrays.copyOfRange(v, 1, v.length), lines[i]);
                case TEXT -> sink.text(v[0], lines[i]);
                default -> sink.end(v[0], lines[i]);
            }
        }
    }

    /** Parses {@code text}, the contents of {@code file}; errors name the file and line. */
    static ConfigDocument parse(Path file, String text) throws ConfigException {
        XMLInputFactory f = XMLInputFactory.newFactory();
        f.setProperty(XMLInputFactory.SUPPORT_DTD, false); // the DOCTYPE is skipped, never fetched
        f.setProperty(XMLInputFactory.IS_SUPPORTING_EXTERNAL_ENTITIES, false);
        f.setProperty(XMLInputFactory.IS_NAMESPACE_AWARE, false);
        f.setProperty(XMLInputFactory.IS_COALESCING, true);
        List<Byte> kinds = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        List<String[]> values = new ArrayList<>();
        XMLStreamReader r = null;
        try {
            r = f.createXMLStreamReader(new StringReader(text));
            while (r.hasNext()) {
                int ev = r.next();
                switch (ev) {
                    case XMLStreamConstants.START_ELEMENT -> {
                        String[] v = new String[1 + 2 * r.getAttributeCount()];
                        v[0] = r.getLocalName();
                        for (int i = 0; i < r.getAttributeCount(); i++) {
                            v[1 + 2 * i] = r.getAttributeLocalName(i);
                            v[2 + 2 * i] = r.getAttributeValue(i);
                        }
                        add(kinds, lines, values, START, r.getLocation(), v);
                    }
                    case XMLStreamConstants.CHARACTERS, XMLStreamConstants.CDATA, XMLStreamConstants.SPACE ->
                            add(kinds, lines, values, TEXT, r.getLocation(), new String[] {r.getText()});
                    case XMLStreamConstants.END_ELEMENT ->
                            add(kinds, lines, values, END, r.getLocation(), new String[] {r.getLocalName()});
                    case XMLStreamConstants.ENTITY_REFERENCE -> throw new ConfigException(file + ":"
                            + r.getLocation().getLineNumber() + ": entity references are not supported: &" + r.getLocalName() + ";");
                    default -> { } // DTD, comments, processing instructions
                }
            }
        } catch (XMLStreamException e) {
            Location at = e.getLocation();
            String msg = e.getMessage();
            int m = msg == null ? -1 : msg.indexOf("Message: ");
            throw new ConfigException(file + ":" + (at == null ? 0 : at.getLineNumber()) + ": "
                    + (m >= 0 ? msg.substring(m + 9) : msg), e);
        } finally {
            if (r != null) {
                try {
                    r.close();
                } catch (XMLStreamException e) {
                    // nothing held: the input is a string
                }
            }
        }
        byte[] k = new byte[kinds.size()];
        int[] l = new int[k.length];
        for (int i = 0; i < k.length; i++) {
            k[i] = kinds.get(i);
            l[i] = lines.get(i);
        }
        return new ConfigDocument(k, l, values.toArray(new String[0][]));
    }

    private static void add(List<Byte> kinds, List<Integer> lines, List<String[]> values, byte kind, Location at,
                            String[] v) {
        kinds.add(kind);
        lines.add(at == null ? 0 : at.getLineNumber());
        values.add(v);
    }

    void write(DataOutputStream out) throws IOException {
        out.writeInt(kinds.length);
        for (int i = 0; i < kinds.length; i++) {
            out.writeByte(kinds[i]);
            out.writeInt(lines[i]);
            out.writeShort(values[i].length);
            for (String s : values[i]) {
                out.writeUTF(s);
            }
        }
    }

    /** Reads what {@link #write} wrote; an IOException for anything malformed. */
    static ConfigDocument read(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0 || n > 1_000_000) {
            throw new IOException("bad event count " + n);
        }
        byte[] k = new byte[n];
        int[] l = new int[n];
        String[][] v = new String[n][];
        for (int i = 0; i < n; i++) {
            k[i] = in.readByte();
            if (k[i] < START || k[i] > END) {
                throw new IOException("bad event kind " + k[i]);
            }
            l[i] = in.readInt();
            int c = in.readUnsignedShort();
            if (c < 1 || (k[i] != START && c != 1) || (k[i] == START && c % 2 == 0)) {
                throw new IOException("bad value count " + c);
            }
            v[i] = new String[c];
            for (int j = 0; j < c; j++) {
                v[i][j] = in.readUTF();
            }
        }
        return new ConfigDocument(k, l, v);
    }
}
