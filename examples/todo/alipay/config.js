// Where the minibase server is, and the FC service name it answers to ([app] service).
//
// - Developer tool + a server on this computer: http://127.0.0.1:8000, with the tool's
//   domain check turned off (详情 → 域名信息 → 忽略 httpRequest 域名合法性检查).
// - A phone (preview / real device): the computer's LAN address (minibase serve --host
//   0.0.0.0) while that check is off, or, for release, your HTTPS endpoint, added to the
//   console's allow-list (开发设置 → 服务器域名白名单).
module.exports = {
  endpoint: 'http://127.0.0.1:8000',
  service: 'todo-list-svc',
  // Leave empty to log in with my.getAuthCode (needs [auth.alipay] on the server; until then the
  // app offers the server's dev login). Set a name, e.g. 'alice', to always use the dev
  // login of a local server ([auth.dev] enabled).
  devUser: '',
}
