package dev.pglease.testkit;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.function.UnaryOperator;
import javax.sql.DataSource;
import org.springframework.jdbc.datasource.DelegatingDataSource;

/**
 * A data source whose connections run a step of the test's before each call of theirs (by method name): to hold a
 * commit back, delay an abort, and so on, on real connections; and may rewrite the SQL they prepare (to make one
 * statement slow on the server).
 */
public final class InterceptedConnections extends DelegatingDataSource {

    /** Runs before the connection's method {@code method} is called. */
    @FunctionalInterface
    public interface BeforeCall {
        void before(String method) throws Exception;
    }

    private final BeforeCall beforeCall;
    private final UnaryOperator<String> sql;

    public InterceptedConnections(DataSource target, BeforeCall beforeCall) {
        this(target, beforeCall, UnaryOperator.identity());
    }

    /** As {@link #InterceptedConnections(DataSource, BeforeCall)}, and {@code prepareStatement} prepares {@code sql(s)}. */
    public InterceptedConnections(DataSource target, BeforeCall beforeCall, UnaryOperator<String> sql) {
        super(target);
        this.beforeCall = beforeCall;
        this.sql = sql;
    }

    @Override
    public Connection getConnection() throws SQLException {
        Connection real = obtainTargetDataSource().getConnection();
        return (Connection) Proxy.newProxyInstance(
                Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, (proxy, method, args) -> {
                    beforeCall.before(method.getName());
                    if (method.getName().equals("prepareStatement") && args[0] instanceof String text) {
                        args[0] = sql.apply(text);
                    }
                    try {
                        return method.invoke(real, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }
}
