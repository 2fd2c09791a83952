// Starts Swagger UI on the server's /docs page. A file of its own, not an inline
// script, so that the page works under a Content-Security-Policy without
// 'unsafe-inline'. The OpenAPI URL comes from the page (data-openapi-url).
const root = document.getElementById('swagger-ui');
window.SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
