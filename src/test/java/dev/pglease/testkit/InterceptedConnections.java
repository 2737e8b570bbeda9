package dev.pglease.testkit;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.SQLException;
import javax.sql.DataSource;
import org.springframework.jdbc.datasource.DelegatingDataSource;

/**
 * A data source whose connections run a step of the test's before each call of theirs (by method name): to hold a
 * commit back, delay an abort, and so on, on real connections.
 */
public final class InterceptedConnections extends DelegatingDataSource {

    /** Runs before the connection's method {@code method} is called. */
    @FunctionalInterface
    public interface BeforeCall {
        void before(String method) throws Exception;
    }

    private final BeforeCall beforeCall;

    public InterceptedConnections(DataSource target, BeforeCall beforeCall) {
        super(target);
        this.beforeCall = beforeCall;
    }

    @Override
    public Connection getConnection() throws SQLException {
        Connection real = obtainTargetDataSource().getConnection();
        return (Connection) Proxy.newProxyInstance(
                Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, (proxy, method, args) -> {
                    beforeCall.before(method.getName());
                    try {
                        return method.invoke(real, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }
}
