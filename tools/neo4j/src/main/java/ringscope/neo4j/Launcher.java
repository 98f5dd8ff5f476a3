package ringscope.neo4j;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.io.ByteUnit;

/**
 * Starts Neo4j Community (embedded) for ringscope: Bolt on 127.0.0.1 only,
 * auth off (local use), explicit page cache, data in a folder of our choice.
 *
 * <p>Arguments: {@code --port N} (default 7687, or RINGSCOPE_NEO4J_PORT),
 * {@code --data DIR} (default ./.neo4j-data), {@code --pagecache 512m},
 * {@code --plugins DIR} (default: the {@code plugins} folder beside the
 * launcher's {@code classes} folder, i.e. {@code target/plugins} when the
 * Maven build put APOC/OpenGDS there, else {@code DATA/plugins}).
 * The heap is the JVM's own: the caller sets it with -Xms/-Xmx.
 *
 * <p>Prints {@code RINGSCOPE_NEO4J_READY bolt://127.0.0.1:PORT} to stdout once
 * the default database commits a transaction (Bolt is started before that),
 * writes {@code DATA/neo4j.pid}, and shuts down cleanly on SIGTERM/SIGINT.
 * Neo4j's own logs go to {@code DATA/logs} (debug.log), not stdout.
 *
 * <p>Plugin jars must also be on the JVM classpath (as the Neo4j server's own
 * start script does with {@code plugins/*}): OpenGDS registers its procedure
 * facade through an extension that Neo4j finds only on the classpath.
 */
public final class Launcher {

    private Launcher() {}

    public static void main(String[] args) throws Exception {
        String portEnv = System.getenv("RINGSCOPE_NEO4J_PORT");
        int port = portEnv != null && !portEnv.isBlank() ? Integer.parseInt(portEnv.trim()) : 7687;
        Path data = Path.of(".neo4j-data");
        String pagecache = "512m";
        Path plugins = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--port" -> { port = Integer.parseInt(need(a, v)); i++; }
                case "--data" -> { data = Path.of(need(a, v)); i++; }
                case "--pagecache" -> { pagecache = need(a, v); i++; }
                case "--plugins" -> { plugins = Path.of(need(a, v)); i++; }
                default -> throw new IllegalArgumentException("Unknown argument " + a
                        + " (expected --port, --data, --pagecache, --plugins)");
            }
        }
        data = data.toAbsolutePath();
        Files.createDirectories(data);
        if (plugins == null) {
            plugins = bundledPlugins();
        }
        if (plugins == null) {
            plugins = data.resolve("plugins");
        }
        Files.createDirectories(plugins);

        DatabaseManagementService service = new DatabaseManagementServiceBuilder(data)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
                .setConfig(HttpConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.auth_enabled, false)
                .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.parse(pagecache))
                .setConfig(GraphDatabaseSettings.plugin_dir, plugins.toAbsolutePath())
                .setConfig(GraphDatabaseSettings.procedure_unrestricted, List.of("apoc.*", "gds.*"))
                .setConfig(GraphDatabaseSettings.transaction_timeout, java.time.Duration.ofMinutes(30))
                .build();

        Path pidFile = data.resolve("neo4j.pid");
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                service.shutdown();
            } finally {
                try {
                    Files.deleteIfExists(pidFile);
                } catch (IOException ignored) {
                    // best effort
                }
                stopped.countDown();
            }
        }, "ringscope-neo4j-shutdown"));

        GraphDatabaseService db = service.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        // The database is usable when a trivial transaction commits.
        db.executeTransactionally("RETURN 1");
        writePid(data);
        System.err.println("ringscope-neo4j: data " + data + ", plugins " + plugins.toAbsolutePath()
                + ", page cache " + pagecache + ", max heap " + (Runtime.getRuntime().maxMemory() >> 20) + " MiB");
        System.out.println("RINGSCOPE_NEO4J_READY bolt://127.0.0.1:" + port);
        System.out.flush();
        stopped.await();
    }

    /** {@code target/plugins} when running from {@code target/classes} and it holds jars. */
    private static Path bundledPlugins() {
        try {
            Path classes = Path.of(Launcher.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            Path candidate = classes.getParent().resolve("plugins");
            if (Files.isDirectory(candidate)) {
                try (var jars = Files.list(candidate)) {
                    if (jars.anyMatch(p -> p.toString().endsWith(".jar"))) {
                        return candidate;
                    }
                }
            }
        } catch (Exception ignored) {
            // fall back to DATA/plugins
        }
        return null;
    }

    private static String need(String flag, String value) {
        if (value == null) {
            throw new IllegalArgumentException(flag + " needs a value");
        }
        return value;
    }

    private static void writePid(Path data) throws IOException {
        List<String> lines = new ArrayList<>();
        lines.add(Long.toString(ProcessHandle.current().pid()));
        Files.write(data.resolve("neo4j.pid"), lines, StandardCharsets.UTF_8);
    }
}
