/**
 * Writes the next versioned MySQL migration: the difference between the entities and the schema
 * that the existing migrations build. Runs against a scratch database on `MYSQL_URL`
 * (default mysql://root@127.0.0.1:3306), dropped afterwards. Then list the new class in
 * src/db/migrations/index.ts, and read the SQL: against MariaDB the schema diff also lists
 * changes that are not real (JSON columns it stores as LONGTEXT with a check, nullable columns'
 * defaults); keep only the statements the change needs.
 *
 *   npm run migration:create -- <name>
 */
import { Migrator } from "@mikro-orm/migrations";
import { MySqlDriver, MikroORM } from "@mikro-orm/mysql";
import { createConnection } from "mysql2/promise";
import { ENTITIES } from "../src/db/entities.js";
import { MIGRATIONS } from "../src/db/migrations/index.js";

const serverUrl = process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306";
const name = process.argv[2] ?? "change";
const scratch = `migration_scratch_${Date.now()}`;

const admin = await createConnection(serverUrl);
await admin.query(`CREATE DATABASE \`${scratch}\``);
try {
  const url = new URL(serverUrl);
  url.pathname = `/${scratch}`;
  const orm = await MikroORM.init({
    driver: MySqlDriver,
    clientUrl: url.toString(),
    entities: ENTITIES,
    discovery: { disableDynamicFileAccess: true, requireEntitiesArray: true },
    extensions: [Migrator],
    migrations: {
      migrationsList: MIGRATIONS,
      path: "src/db/migrations",
      pathTs: "src/db/migrations",
      emit: "ts",
      snapshot: false,
      fileName: (timestamp) => `migration-${timestamp}-${name}`,
    },
  });
  await orm.getMigrator().up();
  const result = await orm.getMigrator().createMigration("src/db/migrations", false, MIGRATIONS.length === 0);
  console.log(result.fileName ? `wrote src/db/migrations/${result.fileName}` : "no changes");
  await orm.close(true);
} finally {
  await admin.query(`DROP DATABASE \`${scratch}\``);
  await admin.end();
}
