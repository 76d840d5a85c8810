// Migration modes as an SDK user sees them (workloads from run.sh):
//   shadow_cross   incumbent gpt-4o, candidate claude-sonnet-4, shadow
//   canary_all     incumbent gpt-4o, candidate claude-sonnet-4, canary 100%
//   fallback_cross incumbent claude-sonnet-4, candidate gpt-4o-500 (always 500), candidate mode
// The served answer must be the right arm's, unaltered, in the client's API.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const BASE = process.env.CUTOVER_URL;
if (!BASE) throw new Error('CUTOVER_URL is not set: run tests/compat/run.sh');

const T = { timeout: 20_000 };
const openai = () => new OpenAI({ baseURL: `${BASE}/v1`, apiKey: 'sk-compat-client', maxRetries: 0, timeout: 15_000 });
const anthropic = () => new Anthropic({ baseURL: BASE, apiKey: 'sk-ant-compat-client', maxRetries: 0, timeout: 15_000 });

async function openaiStreamText(model, user) {
  const stream = await openai().chat.completions.create({
    model, messages: [{ role: 'user', content: user }], stream: true, stream_options: { include_usage: true },
  });
  let text = '', finish = null;
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      text += ch.delta?.content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  return { text, finish };
}

describe('shadow: the incumbent serves, the candidate never shows', () => {
  test('openai SDK, JSON', T, async () => {
    const { data, response } = await openai().chat.completions.create({
      model: 'compat-shadow', messages: [{ role: 'user', content: 'shadow me' }],
    }).withResponse();
    assert.equal(data.choices[0].message.content, '[gpt-4o/openai]  | shadow me');
    assert.equal(response.headers.get('x-cutover-arm'), 'incumbent');
    assert.equal(response.headers.get('x-cutover-workload'), 'shadow_cross');
  });

  test('openai SDK, streaming', T, async () => {
    const { text, finish } = await openaiStreamText('compat-shadow', 'shadow my stream');
    assert.equal(text, '[gpt-4o/openai]  | shadow my stream');
    assert.equal(finish, 'stop');
  });

  test('anthropic SDK (incumbent translated), streaming', T, async () => {
    const msg = await anthropic().messages.stream({
      model: 'compat-shadow', max_tokens: 64, messages: [{ role: 'user', content: 'shadow me too' }],
    }).finalMessage();
    assert.equal(msg.content[0].text, '[gpt-4o/openai]  | shadow me too');
    assert.equal(msg.stop_reason, 'end_turn');
  });
});

describe('canary 100%: the candidate serves, translated', () => {
  test('openai SDK, JSON', T, async () => {
    const { data, response } = await openai().chat.completions.create({
      model: 'compat-canary-100', messages: [{ role: 'user', content: 'new model please' }], user: 'user-42',
    }).withResponse();
    assert.equal(data.choices[0].message.content, '[claude-sonnet-4/anthropic]  | new model please');
    assert.equal(response.headers.get('x-cutover-arm'), 'candidate');
  });

  test('openai SDK, streaming', T, async () => {
    const { text, finish } = await openaiStreamText('compat-canary-100', 'stream from the new one');
    assert.equal(text, '[claude-sonnet-4/anthropic]  | stream from the new one');
    assert.equal(finish, 'stop');
  });

  test('anthropic SDK, JSON', T, async () => {
    const { data, response } = await anthropic().messages.create({
      model: 'compat-canary-100', max_tokens: 64, messages: [{ role: 'user', content: 'new model please' }],
      metadata: { user_id: 'user-42' },
    }).withResponse();
    assert.equal(data.content[0].text, '[claude-sonnet-4/anthropic]  | new model please');
    assert.equal(response.headers.get('x-cutover-arm'), 'candidate');
  });
});

describe('fallback: a failing candidate is retried on the incumbent', () => {
  test('openai SDK, JSON', T, async () => {
    const { data, response } = await openai().chat.completions.create({
      model: 'compat-fallback', messages: [{ role: 'user', content: 'rescue me' }],
    }).withResponse();
    assert.equal(response.status, 200);
    assert.equal(data.choices[0].message.content, '[claude-sonnet-4/anthropic]  | rescue me');
  });

  test('openai SDK, streaming', T, async () => {
    const { text, finish } = await openaiStreamText('compat-fallback', 'rescue my stream');
    assert.equal(text, '[claude-sonnet-4/anthropic]  | rescue my stream');
    assert.equal(finish, 'stop');
  });

  test('anthropic SDK, JSON', T, async () => {
    const data = await anthropic().messages.create({
      model: 'compat-fallback', max_tokens: 64, messages: [{ role: 'user', content: 'rescue me' }],
    });
    assert.equal(data.content[0].text, '[claude-sonnet-4/anthropic]  | rescue me');
  });
});
