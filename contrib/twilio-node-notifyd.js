// Points twilio-node applications and the twilio CLI at notifyd without code changes:
//   NOTIFYD_URL=http://127.0.0.1:8080 NODE_OPTIONS="--require /path/to/twilio-node-notifyd.js" twilio api:notify:v1:services:list
// Both send every request through axios; this preload rewrites the URL of each request for notify.twilio.com
// to $NOTIFYD_URL, and of conversations.twilio.com/v1/Services/*/Bindings to $NOTIFYD_URL/conversations.
// Requests for every other Twilio host are left alone.
"use strict";
const Module = require("module");
const target = (process.env.NOTIFYD_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");

function rewrite(url) {
  if (typeof url !== "string") return url;
  return url
    .replace(/^https:\/\/notify\.twilio\.com(?=\/|$)/, target)
    .replace(/^https:\/\/conversations\.twilio\.com(\/v1\/Services\/[^/]+\/Bindings)/, target + "/conversations$1");
}

function patch(axios) {
  const Axios = axios && (axios.Axios || (axios.default && axios.default.Axios));
  if (!Axios || Axios.prototype.__notifyd) return;
  const request = Axios.prototype.request;
  Axios.prototype.request = function (configOrUrl, config) {
    if (typeof configOrUrl === "string") return request.call(this, rewrite(configOrUrl), config);
    if (configOrUrl && configOrUrl.url) configOrUrl = { ...configOrUrl, url: rewrite(configOrUrl.url) };
    return request.call(this, configOrUrl, config);
  };
  Axios.prototype.__notifyd = true;
  // The default instance bound the original request() when axios loaded: give it an interceptor.
  const instance = typeof axios === "function" ? axios : axios.default;
  if (instance && instance.interceptors) {
    instance.interceptors.request.use((config) => ({ ...config, url: rewrite(config.url) }));
  }
}

const load = Module._load;
Module._load = function (request) {
  const exported = load.apply(this, arguments);
  if (request === "axios") patch(exported);
  return exported;
};
