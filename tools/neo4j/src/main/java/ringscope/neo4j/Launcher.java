package ringscope.neo4j;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.lang.reflect.Method;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;

import inet.ipaddr.IPAddressString;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
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
 * auth on with a generated password, explicit page cache, data in a folder of
 * our choice, and nothing that reads files or URLs or reports to the vendor.
 *
 * <p>Arguments: {@code --port N} (default 7687, or RINGSCOPE_NEO4J_PORT),
 * {@code --data DIR} (default ./.neo4j-data), {@code --pagecache 512m},
 * {@code --plugins DIR} (default: the {@code plugins} folder beside the
 * launcher's {@code classes} folder, i.e. {@code target/plugins} when the
 * Maven build put APOC/OpenGDS there, else {@code DATA/plugins}),
 * {@code --tx-memory SIZE} (largest heap one transaction may use; 0 = no
 * limit), {@code --allow-origin URL} (repeatable: a browser origin allowed to
 * open a WebSocket to Bolt; none by default), {@code --no-auth} (tests only).
 * The heap is the JVM's own: the caller sets it with -Xms/-Xmx.
 *
 * <p>Auth: user {@code neo4j}; on the first start (no {@code DATA/neo4j-password})
 * a random password is generated, set, and written to that file with mode
 * 600. Delete the file and restart to set a new one. The password is never
 * printed.
 *
 * <p>Privacy: {@code LOAD CSV} from {@code file:} URLs is off, the import
 * directory is the empty {@code DATA/import}, every IP address is on Cypher's
 * URL blocklist (so no {@code http:} fetch from LOAD CSV or APOC), APOC's file
 * import/export is off, and procedures that fetch URLs, read or write files
 * or run Cypher from strings are not loaded at all (see
 * {@link #PROCEDURE_ALLOWLIST}). Usage reporting to Neo4j is off. Bolt
 * WebSocket requests from browser origins are refused ({@link OriginGuard}).
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

    /** The user whose generated password the launcher keeps in {@link #PASSWORD_FILE}. */
    static final String USER = "neo4j";
    /** File in the data folder holding the generated password (mode 600). */
    static final String PASSWORD_FILE = "neo4j-password";

    /**
     * Procedures and functions loaded from the plugins: all of OpenGDS, and
     * the APOC namespaces that neither fetch URLs, read or write files, nor
     * run Cypher handed to them as text. Left out: apoc.load, apoc.import,
     * apoc.export, apoc.log (files and URLs); apoc.cypher, apoc.periodic,
     * apoc.when/case/do, apoc.graph (fromCypher), apoc.search, apoc.trigger
     * (Cypher from strings, which no plan check can see into);
     * apoc.spatial (geocoding calls a web service); apoc.util (sleep,
     * decompression); apoc.warmup, apoc.example, apoc.xml. Built-in
     * procedures (db.*, dbms.*) are not affected by this list.
     */
    static final List<String> PROCEDURE_ALLOWLIST = List.of(
            "gds.*",
            "apoc.agg.*", "apoc.algo.*", "apoc.any.*", "apoc.atomic.*", "apoc.bitwise.*", "apoc.coll.*",
            "apoc.convert.*", "apoc.create.*", "apoc.data.*", "apoc.date.*", "apoc.diff.*", "apoc.hashing.*",
            "apoc.json.*", "apoc.label.*", "apoc.lock.*", "apoc.map.*", "apoc.math.*", "apoc.merge.*",
            "apoc.meta.*", "apoc.neighbors.*", "apoc.node.*", "apoc.nodes.*", "apoc.number.*", "apoc.path.*",
            "apoc.paths.*", "apoc.refactor.*", "apoc.rel.*", "apoc.schema.*", "apoc.scoring.*", "apoc.stats.*",
            "apoc.temporal.*", "apoc.text.*", "apoc.help", "apoc.version");

    /**
     * APOC 5 reads its settings from {@code apoc.conf} in the conf folder,
     * overridden by Java system properties, overridden by environment
     * variables of the same name. System properties set here win over any
     * {@code DATA/conf/apoc.conf}.
     */
    static final Map<String, String> APOC_SETTINGS = Map.of(
            "apoc.import.file.enabled", "false",
            "apoc.export.file.enabled", "false",
            "apoc.import.file.use_neo4j_config", "true",
            "apoc.trigger.enabled", "false");

    private Launcher() {}

    public static void main(String[] args) throws Exception {
        String portEnv = System.getenv("RINGSCOPE_NEO4J_PORT");
        int port = portEnv != null && !portEnv.isBlank() ? Integer.parseInt(portEnv.trim()) : 7687;
        Path data = Path.of(".neo4j-data");
        String pagecache = "512m";
        String txMemory = "0";
        Path plugins = null;
        boolean auth = true;
        Set<String> origins = new HashSet<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--port" -> { port = Integer.parseInt(need(a, v)); i++; }
                case "--data" -> { data = Path.of(need(a, v)); i++; }
                case "--pagecache" -> { pagecache = need(a, v); i++; }
                case "--plugins" -> { plugins = Path.of(need(a, v)); i++; }
                case "--tx-memory" -> { txMemory = need(a, v); i++; }
                case "--allow-origin" -> { origins.add(need(a, v).trim().toLowerCase(Locale.ROOT)); i++; }
                case "--no-auth" -> auth = false;
                default -> throw new IllegalArgumentException("Unknown argument " + a
                        + " (expected --port, --data, --pagecache, --plugins, --tx-memory, --allow-origin, --no-auth)");
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
        // LOAD CSV's file root: an empty folder of our own (and file URLs are off anyway)
        Path importDir = data.resolve("import");
        Files.createDirectories(importDir);
        APOC_SETTINGS.forEach(System::setProperty);

        DatabaseManagementService service = new DatabaseManagementServiceBuilder(data)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
                .setConfig(HttpConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.auth_enabled, auth)
                .setConfig(GraphDatabaseSettings.udc_enabled, false)
                .setConfig(GraphDatabaseSettings.allow_file_urls, false)
                .setConfig(GraphDatabaseSettings.load_csv_file_url_root, importDir)
                .setConfig(GraphDatabaseInternalSettings.cypher_ip_blocklist,
                        List.of(new IPAddressString("0.0.0.0/0"), new IPAddressString("::/0")))
                .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.parse(pagecache))
                .setConfig(GraphDatabaseSettings.memory_transaction_max_size, ByteUnit.parse(txMemory))
                .setConfig(GraphDatabaseSettings.plugin_dir, plugins.toAbsolutePath())
                .setConfig(GraphDatabaseSettings.procedure_allowlist, PROCEDURE_ALLOWLIST)
                .setConfig(GraphDatabaseSettings.procedure_unrestricted, List.of("apoc.*", "gds.*"))
                .setConfig(GraphDatabaseSettings.transaction_timeout, java.time.Duration.ofMinutes(30))
                // Bolt's event loops waited a 5 s quiet period on every stop (ingest --bulk stops the
                // server before its import): the connections are closed by then, nothing to wait for
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                .build();

        Path pidFile = data.resolve("neo4j.pid");
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            boolean clean = false;
            try {
                service.shutdown();
                clean = true;
            } finally {
                try {
                    Files.deleteIfExists(pidFile);
                } catch (IOException ignored) {
                    // best effort
                }
                stopped.countDown();
            }
            // The databases are checkpointed and closed: exit now rather than wait on the
            // plugins' thread pools and other hooks (seconds on a loaded machine; a stop
            // for ingest --bulk waits for this process to exit before it imports)
            if (clean) {
                Runtime.getRuntime().halt(0);
            }
        }, "ringscope-neo4j-shutdown"));

        GraphDatabaseService db = service.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        int guarded = OriginGuard.install(db, Set.copyOf(origins));
        // The database is usable when a trivial transaction commits.
        db.executeTransactionally("RETURN 1");
        if (auth) {
            ensurePassword(service, data.resolve(PASSWORD_FILE));
        }
        String apoc;
        try {
            apoc = checkApocSettings();
        } catch (IllegalStateException e) {
            System.err.println("ringscope-neo4j: " + e.getMessage() + "; refusing to run");
            System.exit(1); // the shutdown hook stops Neo4j
            return;
        }
        writePid(data);
        System.err.println("ringscope-neo4j: data " + data + ", plugins " + plugins.toAbsolutePath()
                + ", page cache " + pagecache + ", max heap " + (Runtime.getRuntime().maxMemory() >> 20) + " MiB"
                + ", auth " + (auth ? "on (user " + USER + ", password in " + data.resolve(PASSWORD_FILE) + ")" : "OFF")
                + ", WebSocket origin guard on " + guarded + " connector(s)");
        System.err.println("ringscope-neo4j: " + apoc);
        System.out.println("RINGSCOPE_NEO4J_READY bolt://127.0.0.1:" + port);
        System.out.flush();
        stopped.await();
    }

    /**
     * On the first start (no password file) give {@link #USER} a random
     * password, then write it to {@code file} with mode 600. The embedded
     * API runs with full rights, so this also works on a data folder first
     * used with auth off. The password travels as a query parameter, never in
     * query text, and is never printed.
     */
    private static void ensurePassword(DatabaseManagementService service, Path file) throws IOException {
        if (Files.exists(file)) {
            return;
        }
        byte[] bytes = new byte[24];
        new SecureRandom().nextBytes(bytes);
        String password = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
        service.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
                "ALTER USER " + USER + " SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(tmp, password + "\n", StandardCharsets.UTF_8);
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * Read APOC's settings back from APOC itself (when it is loaded) and fail
     * unless file import/export are off and file reads follow Neo4j's
     * (disabled) file-URL setting. Returns a line for the launcher log.
     */
    static String checkApocSettings() {
        Object config;
        Method getString;
        try {
            Class<?> type = Class.forName("apoc.ApocConfig");
            config = type.getMethod("apocConfig").invoke(null);
            getString = type.getMethod("getString", String.class);
        } catch (ClassNotFoundException e) {
            return "APOC not on the classpath";
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot read APOC's settings: " + e);
        }
        if (config == null) {
            return "APOC not loaded";
        }
        Map<String, String> expected = new TreeMap<>(APOC_SETTINGS);
        expected.put("apoc.import.file.allow_read_from_filesystem", "false");
        StringBuilder line = new StringBuilder("APOC settings read back:");
        for (Map.Entry<String, String> e : expected.entrySet()) {
            String actual;
            try {
                actual = String.valueOf(getString.invoke(config, e.getKey()));
            } catch (ReflectiveOperationException err) {
                throw new IllegalStateException("cannot read APOC setting " + e.getKey() + ": " + err);
            }
            if (!e.getValue().equalsIgnoreCase(actual)) {
                throw new IllegalStateException("APOC setting " + e.getKey() + " is " + actual + ", expected "
                        + e.getValue());
            }
            line.append(' ').append(e.getKey()).append('=').append(actual);
        }
        return line.toString();
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
