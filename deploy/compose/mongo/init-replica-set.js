// One-shot: make mongo1..3 a replica set (idempotent), majority the default write concern.
const admin = connect(`mongodb://qualityloop:${process.env.MONGO_PASSWORD}@mongo1:27017/admin?directConnection=true`);
let initiated = true;
try {
  admin.adminCommand({ replSetGetStatus: 1 });
} catch (error) {
  initiated = false;
}
if (!initiated) {
  admin.adminCommand({
    replSetInitiate: {
      _id: "rs0",
      members: [
        { _id: 0, host: "mongo1:27017", priority: 2 },
        { _id: 1, host: "mongo2:27017", priority: 1 },
        { _id: 2, host: "mongo3:27017", priority: 1 },
      ],
    },
  });
}
while (!admin.adminCommand({ hello: 1 }).isWritablePrimary) {
  sleep(1000);
}
admin.adminCommand({ setDefaultRWConcern: 1, defaultWriteConcern: { w: "majority" }, defaultReadConcern: { level: "majority" } });
print("replica set rs0 ready");
