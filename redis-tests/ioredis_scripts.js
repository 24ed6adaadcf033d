// ioredis's defineCommand (EVALSHA with the EVAL fallback on NOSCRIPT, as
// Node job queues such as BullMQ use it) against a running server.
// Usage: node redis-tests/ioredis_scripts.js PORT   (with ioredis on NODE_PATH)
'use strict';
const Redis = require('ioredis');
const assert = require('assert');

async function main() {
  const port = Number(process.argv[2]);
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  await r.del('io:cnt', 'io:hash');
  r.defineCommand('incrExpireGet', {
    numberOfKeys: 1,
    lua: "redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])",
  });
  r.defineCommand('hsetMany', {
    numberOfKeys: 1,
    lua: "for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end return redis.call('HLEN', KEYS[1])",
  });
  r.defineCommand('failing', { numberOfKeys: 0, lua: "return redis.error_reply('MYERR custom')" });
  // The first call goes out as EVALSHA, gets NOSCRIPT, and is resent as EVAL.
  await r.script('FLUSH');
  assert.strictEqual(await r.incrExpireGet('io:cnt', 100), '1');
  assert.strictEqual(await r.incrExpireGet('io:cnt', 100), '2');
  const ttl = await r.ttl('io:cnt');
  assert.ok(ttl > 0 && ttl <= 100, `ttl ${ttl}`);
  assert.strictEqual(await r.hsetMany('io:hash', 'a', '1', 'b', '2'), 2);
  // In a pipeline and in MULTI.
  const pipe = await r.pipeline().incrExpireGet('io:cnt', 100).hsetMany('io:hash', 'c', '3').exec();
  assert.deepStrictEqual(pipe, [[null, '3'], [null, 3]]);
  const multi = await r.multi().incrExpireGet('io:cnt', 100).exec();
  assert.deepStrictEqual(multi, [[null, '4']]);
  let err = null;
  try { await r.failing(); } catch (e) { err = e; }
  assert.ok(err && /MYERR custom/.test(err.message), `error: ${err && err.message}`);
  console.log('defineCommand: EVALSHA/EVAL fallback, pipeline, MULTI, error reply: ok');
  r.disconnect();
}

main().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
