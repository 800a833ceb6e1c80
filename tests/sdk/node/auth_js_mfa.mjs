// Drives the MFA API of a tenant served by `mfaflow serve --tls --control`
// with @auth0/auth0-auth-js, the way an application would.
//
// Environment: TENANT_URL (https://127.0.0.1:PORT/), CLIENT_ID, CLIENT_SECRET;
// NODE_EXTRA_CA_CERTS names the tenant's certificate. Each step's outcome is
// recorded under its name, and the last line printed is all of them as JSON:
// {"steps": {"name": {"ok": true, "value": ...} | {"ok": false, "error": ...}}}.
import crypto from "node:crypto";
import { AuthClient, isMfaRequiredError } from "@auth0/auth0-auth-js";

const base = process.env.TENANT_URL;
const domain = new URL(base).host;
const auth = new AuthClient({
  domain,
  clientId: process.env.CLIENT_ID,
  clientSecret: process.env.CLIENT_SECRET,
});
const PASSWORD = "sdk-password-1";
const steps = {};

const describe = (error) => ({
  name: error?.name,
  code: error?.code,
  error: error?.cause?.error,
  description: error?.cause?.error_description,
  status: error?.statusCode ?? error?.cause?.statusCode,
  message: error?.message,
});

async function step(name, action) {
  try {
    const value = await action();
    steps[name] = { ok: true, value: value ?? null };
    return value;
  } catch (error) {
    steps[name] = { ok: false, error: describe(error) };
    return undefined;
  }
}

async function control(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
  const answer = await fetch(base + "__control/" + path, init);
  if (!answer.ok) throw new Error(`control ${path}: ${answer.status}`);
  return answer.json();
}

// RFC 6238 with SHA-1, six digits and 30-second steps, as authenticator apps do.
function totp(secret, at) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const character of secret) {
    bits += alphabet.indexOf(character).toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30)));
  const mac = crypto.createHmac("sha1", key).update(counter).digest();
  const offset = mac[19] & 15;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

async function newUser(tag) {
  const email = `${tag}-${crypto.randomUUID()}@example.test`;
  await control("users", { email, password: PASSWORD, mfa: "always" });
  return email;
}

// The password grant; returns the mfa_token of its mfa_required answer.
async function login(name, email, extra = {}) {
  let mfaToken;
  await step(name, async () => {
    try {
      await auth.getTokenByPassword({
        username: email,
        password: PASSWORD,
        scope: "openid offline_access",
        audience: "https://api.example.test/",
        ...extra,
      });
    } catch (error) {
      if (!isMfaRequiredError(error)) throw error;
      mfaToken = error.cause.mfa_token;
      return {
        error: error.cause.error,
        status: error.statusCode,
        requirements: error.cause.mfa_requirements,
      };
    }
    throw new Error("the password grant gave tokens without MFA");
  });
  return mfaToken;
}

const lastCode = async (email) =>
  (await control(`outbox/last?user=${encodeURIComponent(email)}`)).code;
// The tenant's time, away from the end of a TOTP step, so that a code
// computed from it is still current when the request arrives.
async function tenantNow() {
  const now = (await control("clock")).now;
  if (now % 30 < 28) return now;
  await new Promise((resolve) => setTimeout(resolve, (30 - (now % 30)) * 1000));
  return (await control("clock")).now;
}
const tokens = (answer) => ({
  accessToken: Boolean(answer.accessToken),
  refreshToken: Boolean(answer.refreshToken),
  idToken: Boolean(answer.idToken),
  recoveryCode: answer.recoveryCode ?? null,
});

// --- An authenticator app (OTP), recovery codes, refresh tokens, deletion ---

const otpUser = await newUser("otp");
let mfaToken = await login("otp: password grant", otpUser);
const otp = await step("otp: enrol", () =>
  auth.mfa.enrollAuthenticator({ authenticatorTypes: ["otp"], mfaToken }),
);
// Confirm with the previous step's code: the current one stays unused.
const confirmed = await step("otp: confirm enrolment", async () =>
  tokens(await auth.mfa.verify({
    factorType: "otp",
    otp: totp(otp.secret, (await tenantNow()) - 30),
    mfaToken,
  })),
);
let kept = await step("otp: keep the tokens", async () => {
  mfaToken = await login("otp: password grant again", otpUser);
  return auth.mfa.verify({ factorType: "otp", otp: totp(otp.secret, await tenantNow()), mfaToken });
});
await step("otp: list with the mfa_token", () => auth.mfa.listAuthenticators({ mfaToken }));
await step("otp: challenge", () => auth.mfa.challengeAuthenticator({ challengeType: "otp", mfaToken }));
await step("otp: wrong code", () => auth.mfa.verify({ factorType: "otp", otp: "000000", mfaToken }));
const recovered = await step("recovery code: verify", async () =>
  tokens(await auth.mfa.verify({
    factorType: "recovery-code",
    recoveryCode: otp.recoveryCodes[0],
    mfaToken: await login("recovery code: password grant", otpUser),
  })),
);
await step("recovery code: reuse", async () =>
  auth.mfa.verify({
    factorType: "recovery-code",
    recoveryCode: otp.recoveryCodes[0],
    mfaToken: await login("recovery code: password grant for reuse", otpUser),
  }),
);

const rotated = await step("refresh: rotate", async () => {
  const answer = await auth.getTokenByRefreshToken({ refreshToken: kept.refreshToken });
  return { ...tokens(answer), rotated: answer.refreshToken !== kept.refreshToken, token: answer.refreshToken };
});
await step("refresh: reuse the old token", () =>
  auth.getTokenByRefreshToken({ refreshToken: kept.refreshToken }),
);
await step("refresh: the rotated token after the reuse", () =>
  auth.getTokenByRefreshToken({ refreshToken: rotated.token }),
);

const mfaAudience = `https://${domain}/mfa/`;
const managerToken = await login("mfa audience: password grant", otpUser, {
  audience: mfaAudience,
  scope: "enroll read:authenticators remove:authenticators",
});
const manager = await step("mfa audience: verify a recovery code", async () => {
  const answer = await auth.mfa.verify({
    factorType: "recovery-code",
    recoveryCode: recovered.recoveryCode,
    mfaToken: managerToken,
    audience: mfaAudience,
  });
  return { accessToken: answer.accessToken, scope: answer.scope };
});
const access = manager?.accessToken;
const sms = await step("manage: enrol sms with the access token", () =>
  auth.mfa.enrollAuthenticator({
    authenticatorTypes: ["oob"],
    oobChannels: ["sms"],
    phoneNumber: "+15550001234",
    mfaToken: access,
  }),
);
await step("manage: confirm sms", async () =>
  tokens(await auth.mfa.verify({
    factorType: "oob",
    oobCode: sms.oobCode,
    bindingCode: await lastCode(otpUser),
    mfaToken: access,
  })),
);
const listed = await step("manage: list with the access token", () =>
  auth.mfa.listAuthenticators({ mfaToken: access }),
);
const smsId = listed?.find((a) => a.type === "phone" && a.id.startsWith("sms|"))?.id;
await step("manage: delete with an mfa_token", async () =>
  auth.mfa.deleteAuthenticator({
    authenticatorId: smsId,
    mfaToken: await login("manage: password grant for an mfa_token", otpUser),
  }),
);
await step("manage: delete sms", async () => {
  await auth.mfa.deleteAuthenticator({ authenticatorId: smsId, mfaToken: access });
  return smsId;
});
await step("manage: list after the delete", () => auth.mfa.listAuthenticators({ mfaToken: access }));

// --- Codes sent by text message, phone call and email ---

for (const channel of ["sms", "voice", "email"]) {
  const email = await newUser(channel);
  let token = await login(`${channel}: password grant`, email);
  const where = channel === "email" ? { email } : { phoneNumber: "+15553334444" };
  const enrolment = await step(`${channel}: enrol`, () =>
    auth.mfa.enrollAuthenticator({ authenticatorTypes: ["oob"], oobChannels: [channel], mfaToken: token, ...where }),
  );
  await step(`${channel}: confirm with the code sent`, async () =>
    tokens(await auth.mfa.verify({
      factorType: "oob",
      oobCode: enrolment.oobCode,
      bindingCode: await lastCode(email),
      mfaToken: token,
    })),
  );
  token = await login(`${channel}: password grant again`, email);
  const mine = await step(`${channel}: list`, () => auth.mfa.listAuthenticators({ mfaToken: token }));
  const chosen = mine?.find((a) => a.id.startsWith(`${channel}|`));
  const challenge = await step(`${channel}: challenge`, () =>
    auth.mfa.challengeAuthenticator({ challengeType: "oob", authenticatorId: chosen.id, mfaToken: token }),
  );
  await step(`${channel}: wrong code`, () =>
    auth.mfa.verify({ factorType: "oob", oobCode: challenge.oobCode, bindingCode: "000000", mfaToken: token }),
  );
  await step(`${channel}: verify`, async () =>
    tokens(await auth.mfa.verify({
      factorType: "oob",
      oobCode: challenge.oobCode,
      bindingCode: await lastCode(email),
      mfaToken: token,
    })),
  );
}

// --- Push notifications: polling, approval and rejection ---

const pushUser = await newUser("push");
let pushToken = await login("push: password grant", pushUser);
const push = await step("push: enrol", () =>
  auth.mfa.enrollAuthenticator({ authenticatorTypes: ["oob"], oobChannels: ["auth0"], mfaToken: pushToken }),
);
const poll = (oobCode) => auth.mfa.verify({ factorType: "oob", oobCode, mfaToken: pushToken });
await step("push: poll before approval", () => poll(push.oobCode));
await step("push: poll after approval", async () => {
  await control("pushes/approve", { user: pushUser });
  return tokens(await poll(push.oobCode));
});
pushToken = await login("push: password grant again", pushUser);
await step("push: list", () => auth.mfa.listAuthenticators({ mfaToken: pushToken }));
const rejected = await step("push: challenge", () =>
  auth.mfa.challengeAuthenticator({ challengeType: "oob", mfaToken: pushToken }),
);
await step("push: poll after rejection", async () => {
  await control("pushes/reject", { user: pushUser });
  return poll(rejected.oobCode);
});

console.log(JSON.stringify({ steps }));
