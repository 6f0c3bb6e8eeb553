// Makes lo-mongo a one-member replica set, once: swarm/stack.yml's lo-mongo-init runs it
// (`mongosh --nodb`) until it succeeds. The password is the Docker secret MongoDB's root user
// was created with; it never reaches a command line or the environment.
const fs = require("fs");
const password = fs.readFileSync("/run/secrets/lo_mongo_password", "utf8").trim();
const admin = connect("mongodb://lo-mongo:27017/admin?directConnection=true");
admin.auth("lo", password);
try {
  const status = admin.adminCommand({ replSetGetStatus: 1 });
  print(`replica set ${status.set} already initialised: nothing to do`);
} catch (error) {
  if (error.codeName !== "NotYetInitialized") throw error;
  admin.adminCommand({
    replSetInitiate: { _id: "rs0", members: [{ _id: 0, host: "lo-mongo:27017" }] },
  });
  print("replica set rs0 initialised");
}
