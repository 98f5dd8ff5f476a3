package ringscope.neo4j;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Set;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.ByteToMessageDecoder;
import org.neo4j.bolt.BoltServer;
import org.neo4j.bolt.protocol.common.connector.Connector;
import org.neo4j.bolt.protocol.common.connector.connection.Connection;
import org.neo4j.bolt.protocol.common.connector.connection.listener.ConnectionListener;
import org.neo4j.bolt.protocol.common.connector.listener.ConnectorListener;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.kernel.internal.GraphDatabaseAPI;

/**
 * Refuses HTTP (WebSocket) requests on the Bolt port that carry a browser
 * {@code Origin} header not in the allowed set.
 *
 * <p>Neo4j 5.26 switches a Bolt connection to WebSocket whenever its first
 * bytes are {@code GET }, and has no setting that checks the Origin: any web
 * page the operator visits could open {@code ws://127.0.0.1:7687}. Browsers
 * always send Origin on a WebSocket handshake; non-browser clients, which
 * can speak raw Bolt anyway, need not. So: no Origin, or an allowed one,
 * passes; any other Origin gets {@code 403} and the connection is closed
 * before Neo4j sees a byte.
 *
 * <p>The guard is the first handler of every Bolt connection's pipeline,
 * installed through the Bolt connector's listener hooks
 * ({@link ConnectorListener#onConnectionCreated}, then
 * {@link ConnectionListener#onNetworkPipelineInitialized}). It looks at
 * plain-text traffic only: a TLS-wrapped WebSocket from a browser needs a
 * certificate the browser trusts.
 */
final class OriginGuard extends ByteToMessageDecoder {

    /** Largest HTTP head read while looking for the Origin header (Neo4j's own limit). */
    static final int MAX_HEAD = 65536;

    private static final byte[] GET = "GET ".getBytes(StandardCharsets.US_ASCII);
    private static final String BODY = "Origin not allowed.\n";
    private static final byte[] FORBIDDEN = ("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
            + "Content-Length: " + BODY.length() + "\r\nConnection: close\r\n\r\n" + BODY)
            .getBytes(StandardCharsets.US_ASCII);

    private final Set<String> allowedOrigins;

    OriginGuard(Set<String> allowedOrigins) {
        this.allowedOrigins = allowedOrigins;
    }

    /** Put a guard in front of every connection the Bolt connectors accept from now on. */
    static int install(GraphDatabaseService db, Set<String> allowedOrigins) {
        BoltServer bolt = ((GraphDatabaseAPI) db).getDependencyResolver().resolveDependency(BoltServer.class);
        int n = 0;
        for (Connector<?> connector : bolt.getConnectors()) {
            connector.registerListener(new ConnectorListener() {
                @Override
                public void onConnectionCreated(Connection connection) {
                    connection.registerListener(new ConnectionListener() {
                        @Override
                        public void onNetworkPipelineInitialized(ChannelPipeline pipeline) {
                            pipeline.addFirst("ringscopeOriginGuard", new OriginGuard(allowedOrigins));
                        }
                    });
                }
            });
            n++;
        }
        return n;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (in.readableBytes() < GET.length) {
            return;
        }
        if (!startsWith(in, GET)) {
            ctx.pipeline().remove(this); // Bolt (or TLS): hand every byte read so far to Neo4j
            return;
        }
        int end = indexOfHeadEnd(in);
        if (end < 0) {
            if (in.readableBytes() > MAX_HEAD) {
                refuse(ctx, in);
            }
            return;
        }
        String head = in.toString(in.readerIndex(), end - in.readerIndex(), StandardCharsets.ISO_8859_1);
        String origin = header(head, "origin");
        if (origin != null && !allowedOrigins.contains(origin.trim().toLowerCase(Locale.ROOT))) {
            refuse(ctx, in);
            return;
        }
        ctx.pipeline().remove(this);
    }

    private static void refuse(ChannelHandlerContext ctx, ByteBuf in) {
        in.skipBytes(in.readableBytes());
        ctx.writeAndFlush(Unpooled.wrappedBuffer(FORBIDDEN)).addListener(ChannelFutureListener.CLOSE);
    }

    private static boolean startsWith(ByteBuf in, byte[] prefix) {
        for (int i = 0; i < prefix.length; i++) {
            if (in.getByte(in.readerIndex() + i) != prefix[i]) {
                return false;
            }
        }
        return true;
    }

    /** Index of the first byte after the blank line that ends the HTTP head, or -1. */
    private static int indexOfHeadEnd(ByteBuf in) {
        int last = in.writerIndex() - 4;
        for (int i = in.readerIndex(); i <= last; i++) {
            if (in.getByte(i) == '\r' && in.getByte(i + 1) == '\n' && in.getByte(i + 2) == '\r'
                    && in.getByte(i + 3) == '\n') {
                return i + 4;
            }
        }
        return -1;
    }

    /** The value of the first header called {@code name} (case-insensitive), or null. */
    static String header(String head, String name) {
        String[] lines = head.split("\r\n");
        for (int i = 1; i < lines.length; i++) {
            int colon = lines[i].indexOf(':');
            if (colon > 0 && lines[i].substring(0, colon).trim().equalsIgnoreCase(name)) {
                return lines[i].substring(colon + 1).trim();
            }
        }
        return null;
    }
}
