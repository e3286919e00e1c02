// PemKey writes the private key of one entry of a PKCS12 keystore as an
// unencrypted PKCS#8 PEM file, for clients that take PEM (Go's crypto/tls).
// keytool makes keys and certificates but never exports a private key.
// deploy/kafka.sh runs it as a single-file program (java PemKey.java ...).
//
// Usage: java PemKey.java KEYSTORE PASSWORD ALIAS OUT
import java.io.FileInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Key;
import java.security.KeyStore;
import java.util.Base64;

public class PemKey {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: java PemKey.java KEYSTORE PASSWORD ALIAS OUT");
            System.exit(2);
        }
        char[] pass = args[1].toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(args[0])) {
            ks.load(in, pass);
        }
        Key key = ks.getKey(args[2], pass);
        if (key == null || !"PKCS#8".equals(key.getFormat())) {
            throw new IllegalStateException("no PKCS#8 private key under alias " + args[2] + " in " + args[0]);
        }
        String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(key.getEncoded());
        Files.writeString(Path.of(args[3]), "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n");
    }
}
