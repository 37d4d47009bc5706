// One-shot: make the members a replica set (safe to run again) with majority write and read concerns by
// default. MONGO_PRIMARY: the member to connect to first; MONGO_MEMBERS: host:port of every member.
const [first, ...others] = process.env.MONGO_MEMBERS.split(",");
const admin = connect(
  `mongodb://qualityloop:${encodeURIComponent(process.env.MONGO_PASSWORD)}@${first}/admin?directConnection=true`,
);
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
      members: [first, ...others].map((host, index) => ({ _id: index, host, priority: index === 0 ? 2 : 1 })),
    },
  });
}
while (!admin.adminCommand({ hello: 1 }).isWritablePrimary) {
  sleep(1000);
}
admin.adminCommand({
  setDefaultRWConcern: 1,
  defaultWriteConcern: { w: "majority" },
  defaultReadConcern: { level: "majority" },
});
print("replica set rs0 ready");
