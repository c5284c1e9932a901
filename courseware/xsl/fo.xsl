<?xml version="1.0" encoding="UTF-8"?>
<!-- The courseware PDF layer over Debian's docbook-xsl-ns FO stylesheets: the customer's style
     (courseware/styles/<customer>/style.yml) comes in as the cw.* parameters and DocBook's own
     (fonts, paper), set by the build (plugins/module_utils/courseware). What it adds: a title page
     with the customer's logo, a band of the primary colour with the title, the customer's title
     page text; the logo in the page header over a rule of the primary colour; chapter and section
     titles in the primary colour; a fixed creation date in the PDF's metadata (FOP takes the
     document's dates from the XMP: the same sources give the same bytes). -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:fo="http://www.w3.org/1999/XSL/Format"
    xmlns:d="http://docbook.org/ns/docbook"
    exclude-result-prefixes="d">

  <xsl:import href="http://docbook.sourceforge.net/release/xsl-ns/current/fo/docbook.xsl"/>

  <!-- The customer's style (the build passes every one). -->
  <xsl:param name="cw.primary" select="'#000000'"/>
  <xsl:param name="cw.accent" select="'#000000'"/>
  <xsl:param name="cw.text" select="'#000000'"/>
  <xsl:param name="cw.logo" select="''"/>
  <xsl:param name="cw.publisher" select="''"/>
  <xsl:param name="cw.title-page-text" select="''"/>
  <xsl:param name="cw.date" select="'2000-01-01T00:00:00Z'"/>

  <!-- DocBook's parameters the style sets; the fonts are declared in the style's fop.xconf. -->
  <xsl:param name="fop1.extensions" select="1"/>
  <xsl:param name="symbol.font.family" select="''"/>
  <xsl:param name="paper.type" select="'A4'"/>
  <xsl:param name="double.sided" select="0"/>
  <xsl:param name="draft.mode" select="'no'"/>
  <xsl:param name="header.rule" select="0"/>
  <xsl:param name="footer.rule" select="0"/>
  <xsl:param name="generate.toc">book toc,title</xsl:param>
  <xsl:param name="xref.with.number.and.title" select="1"/>
  <xsl:param name="generate.consistent.ids" select="1"/>
  <xsl:param name="header.column.widths" select="'1 2 1'"/>
  <xsl:param name="shade.verbatim" select="1"/>
  <xsl:param name="ulink.show" select="0"/>

  <xsl:attribute-set name="root.properties">
    <xsl:attribute name="color"><xsl:value-of select="$cw.text"/></xsl:attribute>
  </xsl:attribute-set>
  <xsl:attribute-set name="component.title.properties">
    <xsl:attribute name="color"><xsl:value-of select="$cw.primary"/></xsl:attribute>
  </xsl:attribute-set>
  <xsl:attribute-set name="section.title.properties">
    <xsl:attribute name="color"><xsl:value-of select="$cw.primary"/></xsl:attribute>
  </xsl:attribute-set>
  <xsl:attribute-set name="formal.title.properties">
    <xsl:attribute name="color"><xsl:value-of select="$cw.primary"/></xsl:attribute>
  </xsl:attribute-set>
  <xsl:attribute-set name="xref.properties">
    <xsl:attribute name="color"><xsl:value-of select="$cw.primary"/></xsl:attribute>
  </xsl:attribute-set>
  <xsl:attribute-set name="table.cell.padding">
    <xsl:attribute name="padding">3pt</xsl:attribute>
  </xsl:attribute-set>
  <xsl:template name="table.cell.properties">
    <xsl:param name="bgcolor.pi" select="''"/>
    <xsl:param name="rowsep.inherit" select="1"/>
    <xsl:param name="colsep.inherit" select="1"/>
    <xsl:param name="col" select="1"/>
    <xsl:param name="valign.inherit" select="''"/>
    <xsl:param name="align.inherit" select="''"/>
    <xsl:param name="char.inherit" select="''"/>
    <xsl:if test="ancestor::d:thead">
      <xsl:attribute name="background-color"><xsl:value-of select="$cw.accent"/></xsl:attribute>
      <xsl:attribute name="color">#FFFFFF</xsl:attribute>
      <xsl:attribute name="font-weight">bold</xsl:attribute>
    </xsl:if>
    <xsl:if test="$rowsep.inherit &gt; 0">
      <xsl:call-template name="border"><xsl:with-param name="side" select="'bottom'"/></xsl:call-template>
    </xsl:if>
    <xsl:if test="$colsep.inherit &gt; 0 and $col &lt; (ancestor::d:tgroup/@cols|ancestor::d:entrytbl/@cols)[last()]">
      <xsl:call-template name="border"><xsl:with-param name="side" select="'end'"/></xsl:call-template>
    </xsl:if>
  </xsl:template>

  <!-- The title page: logo, the title on a band of the primary colour, subtitle, the customer's text. -->
  <xsl:template name="book.titlepage.recto">
    <xsl:if test="$cw.logo != ''">
      <fo:block text-align="start" space-after="20mm">
        <fo:external-graphic src="url({$cw.logo})" content-height="18mm"/>
      </fo:block>
    </xsl:if>
    <fo:block-container background-color="{$cw.primary}" padding="8mm" space-after="10mm">
      <fo:block font-family="{$title.fontset}" font-size="28pt" font-weight="bold" color="#FFFFFF">
        <xsl:value-of select="(d:info/d:title|d:title)[1]"/>
      </fo:block>
    </fo:block-container>
    <xsl:if test="(d:info/d:subtitle|d:subtitle)[1]">
      <fo:block font-family="{$title.fontset}" font-size="16pt" color="{$cw.primary}" space-after="30mm">
        <xsl:value-of select="(d:info/d:subtitle|d:subtitle)[1]"/>
      </fo:block>
    </xsl:if>
    <xsl:if test="$cw.publisher != ''">
      <fo:block font-size="14pt" font-weight="bold" space-after="4mm"><xsl:value-of select="$cw.publisher"/></fo:block>
    </xsl:if>
    <xsl:if test="$cw.title-page-text != ''">
      <fo:block font-size="10pt"><xsl:value-of select="$cw.title-page-text"/></fo:block>
    </xsl:if>
  </xsl:template>
  <xsl:template name="book.titlepage.verso"/>
  <xsl:template name="book.titlepage.before.verso"/>

  <!-- The page header: the logo at the start, the chapter title in the middle, over a rule of the
       primary colour. -->
  <xsl:template name="header.content">
    <xsl:param name="pageclass" select="''"/>
    <xsl:param name="sequence" select="''"/>
    <xsl:param name="position" select="''"/>
    <xsl:param name="gentext-key" select="''"/>
    <fo:block>
      <xsl:choose>
        <xsl:when test="$pageclass = 'titlepage' or $sequence = 'blank'"/>
        <xsl:when test="$position = 'left' and $cw.logo != ''">
          <fo:external-graphic src="url({$cw.logo})" content-height="7mm"/>
        </xsl:when>
        <xsl:when test="$position = 'center'">
          <xsl:apply-templates select="." mode="titleabbrev.markup"/>
        </xsl:when>
      </xsl:choose>
    </fo:block>
  </xsl:template>
  <xsl:template name="head.sep.rule">
    <xsl:param name="pageclass"/>
    <xsl:param name="sequence"/>
    <xsl:param name="gentext-key"/>
    <xsl:if test="$pageclass != 'titlepage'">
      <xsl:attribute name="border-bottom-width">1.5pt</xsl:attribute>
      <xsl:attribute name="border-bottom-style">solid</xsl:attribute>
      <xsl:attribute name="border-bottom-color"><xsl:value-of select="$cw.primary"/></xsl:attribute>
    </xsl:if>
  </xsl:template>

  <!-- The PDF's metadata, with fixed dates: FOP writes them as the document's CreationDate and
       ModDate instead of the time of the run. -->
  <xsl:template name="fop1-document-information">
    <fo:declarations>
      <x:xmpmeta xmlns:x="adobe:ns:meta/">
        <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
          <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
            <dc:title><xsl:value-of select="normalize-space((/*/d:info/d:title|/*/d:title)[1])"/></dc:title>
            <dc:date><xsl:value-of select="$cw.date"/></dc:date>
            <xsl:if test="$cw.publisher != ''">
              <dc:creator><xsl:value-of select="$cw.publisher"/></dc:creator>
            </xsl:if>
          </rdf:Description>
          <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
            <xmp:CreatorTool>DocBook XSL Stylesheets with Apache FOP (three-instance courseware)</xmp:CreatorTool>
            <xmp:CreateDate><xsl:value-of select="$cw.date"/></xmp:CreateDate>
            <xmp:ModifyDate><xsl:value-of select="$cw.date"/></xmp:ModifyDate>
            <xmp:MetadataDate><xsl:value-of select="$cw.date"/></xmp:MetadataDate>
          </rdf:Description>
        </rdf:RDF>
      </x:xmpmeta>
    </fo:declarations>
  </xsl:template>
</xsl:stylesheet>
