package dev.pglease.fault.kit;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The test proxy's faults behave as a network would: a partition delays bytes, it does not eat them. */
class TcpProxyTest {

    @Test
    void aConnectionOpenedWhileBlackholedDeliversWhatItSentOnceTheBlackholeLifts() throws Exception {
        try (ServerSocket echo = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
                TcpProxy proxy = new TcpProxy("127.0.0.1", echo.getLocalPort())) {
            Thread server = new Thread(() -> echoOnce(echo), "echo");
            server.setDaemon(true);
            server.start();
            proxy.blackhole(true);
            try (Socket client = new Socket("127.0.0.1", proxy.port())) {
                client.setSoTimeout(3000);
                OutputStream out = client.getOutputStream();
                out.write("hello".getBytes(StandardCharsets.US_ASCII));
                out.flush();
                Thread.sleep(300);
                proxy.blackhole(false);
                byte[] answer = client.getInputStream().readNBytes(5);
                assertThat(new String(answer, StandardCharsets.US_ASCII))
                        .as("what the client sent while the proxy was blackholed, echoed after it lifted")
                        .isEqualTo("hello");
            }
        }
    }

    private static void echoOnce(ServerSocket echo) {
        try (Socket s = echo.accept()) {
            InputStream in = s.getInputStream();
            OutputStream out = s.getOutputStream();
            byte[] buf = new byte[64];
            int n;
            while ((n = in.read(buf)) > 0) {
                out.write(buf, 0, n);
                out.flush();
            }
        } catch (IOException ignored) {
            // the client went away
        }
    }
}
